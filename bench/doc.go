// Package bench holds Strata's benchmark suites: every registered storage
// engine side by side with a raw-file baseline, driven through package engine
// exactly as the broker drives them. The workloads live here, in a library,
// so a command can run them too; go test -bench runs them through
// bench_test.go:
//
//	go test -run '^$' -bench 'Engine/' ./bench/
//
// Results are named BenchmarkEngine/<engine>/<op> so benchstat can compare
// engines op by op; plugin-<engine> is the same built-in engine served out
// of process by the examples/builtin plugin program. The machine is shared
// and noisy: compare engines only as ratios to raw (or, for a plugin, to the
// same engine in process) measured in the same run.
package bench
