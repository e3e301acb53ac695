package broker

import "testing"

// TestBufferPutTwice: a buffer returned twice must not come out of the pool
// twice, or two requests would share one frame.
func TestBufferPutTwice(t *testing.T) {
	b := getBuffer(100)
	putBuffer(b)
	putBuffer(b)
	x, y := getBuffer(100), getBuffer(100)
	if x == y {
		t.Fatal("one buffer handed out twice")
	}
}
