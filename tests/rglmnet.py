"""Whether R's glmnet can be run here: the tests that compare with it skip cleanly without it
(Debian: ``apt-get install r-cran-glmnet``; ``.ci/run`` installs it)."""

from __future__ import annotations

import functools
import shutil
import subprocess


@functools.cache
def glmnet_available() -> bool:
    if shutil.which("Rscript") is None:
        return False
    probe = subprocess.run(["Rscript", "-e", "library(glmnet)"], capture_output=True)
    return probe.returncode == 0
