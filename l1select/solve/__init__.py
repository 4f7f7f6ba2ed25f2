"""What is computed from the prepared data: paths per family and their CV measures."""
