"""Benchmarks of the reference cache against library anchors; `python -m bench` regenerates BENCHMARKS.md.

One module per concept: `workload` (the data), `timing` (sampling), `services` (real servers),
`paths` (the reference, one operation path at a time), `anchors` (what a library does for the
same job), `hashing` (keys of big files), `scaling`, `footprint`, `tuning`, `profiling`, `plot`,
`report`.
"""
