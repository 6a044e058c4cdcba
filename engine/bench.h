// bench.h: `qbias bench`, the speed of this machine and of qbias's kernels and models on it.
//
// It measures the machine first (multi-threaded streaming read bandwidth, peak int8 and fp32
// throughput), then every weight format on the matrix shapes of real models (matrix-vector
// effective GB/s against the bandwidth, matrix-matrix GOPS at 512 rows against the peak), then
// random-weight models of real shapes built directly in each format (prefill and decode tokens/s,
// decode against the bandwidth roofline). Output is a table on stdout, or JSON with --json.
#ifndef QBIAS_BENCH_H
#define QBIAS_BENCH_H

// Runs the command with its arguments (argv[0] is "bench"). Returns the process exit status:
// 0, 1 on a failure, 2 on invalid arguments (with a message on stderr).
int bench_main(int argc, char **argv);

#endif
