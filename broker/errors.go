package broker

// repeated marks the entries of a request, n of them, whose key is shared
// with another entry: Kafka answers each of those INVALID_REQUEST (a topic
// or config resource named twice in one request) and serves the rest.
func repeated[K comparable](n int, key func(i int) K) []bool {
	count := make(map[K]int, n)
	for i := range n {
		count[key(i)]++
	}
	dups := make([]bool, n)
	for i := range n {
		dups[i] = count[key(i)] > 1
	}
	return dups
}
