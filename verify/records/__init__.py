"""Records: the files a run leaves behind (counterexamples and certificates), each with one
writer and one validating reader, and the format id in one place."""
