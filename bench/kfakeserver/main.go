// Command kfakeserver runs franz-go's kfake, an in-memory fake Kafka
// cluster of one broker, as a process of its own on 127.0.0.1, so the
// broker benchmark can drive it exactly as it drives a strata process. It
// prints "addr=<host:port>" on standard output once it listens and runs
// until SIGINT or SIGTERM.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		fmt.Fprintln(os.Stderr, "kfakeserver:", err)
		os.Exit(1)
	}
	fmt.Printf("addr=%s\n", c.ListenAddrs()[0])
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	c.Close()
}
