# R glmnet's cv.glmnet, fit only, on a benchmark CSV (run by benchmarks/run.py).
#
#   Rscript benchmarks/glmnet_cv.R DATA.csv FOLDS.txt TARGET REPEATS
#
# DATA.csv: a header row, numeric columns, TARGET among them (read with base R, not timed).
# FOLDS.txt: one fold number (1-based) per data row, l1select's folds. Times only the
# cv.glmnet call (defaults: lasso, standardize = TRUE, nlambda = 100, lambda.min.ratio 1e-2
# when rows < features, else 1e-4) and prints one JSON line per repeat.
suppressPackageStartupMessages(library(glmnet))
args <- commandArgs(trailingOnly = TRUE)
path <- args[1]
foldid <- scan(args[2], what = integer(), quiet = TRUE)
target <- args[3]
repeats <- as.integer(args[4])

con <- file(path, "r")
header <- strsplit(readLines(con, n = 1), ",", fixed = TRUE)[[1]]
values <- scan(con, what = double(), sep = ",", quiet = TRUE)
close(con)
m <- matrix(values, ncol = length(header), byrow = TRUE)
rm(values)
j <- match(target, header)
y <- m[, j]
x <- m[, -j, drop = FALSE]
rm(m)
stopifnot(length(foldid) == nrow(x))
cat(sprintf('{"event": "loaded", "n": %d, "p": %d}\n', nrow(x), ncol(x)))
for (r in seq_len(repeats)) {
  t <- system.time(fit <- cv.glmnet(x, y, foldid = foldid, nlambda = 100))[["elapsed"]]
  nz <- sum(coef(fit, s = "lambda.min")[-1] != 0)
  cat(sprintf(paste0('{"event": "fit", "seconds": %.4f, "lambda_min": %.8g, ',
                     '"n_lambda": %d, "n_nonzero": %d}\n'),
              t, fit$lambda.min, length(fit$lambda), nz))
}
cat(sprintf('{"event": "version", "glmnet": "%s", "r": "%s"}\n',
            as.character(packageVersion("glmnet")), R.version$version.string))
