"""A run: the job graph, the pipeline that releases jobs as answers commit, and its bookkeeping."""
