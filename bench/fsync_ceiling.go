// Docker's durable write sequence (create temp, write, fsync, close, chmod, rename) on one
// goroutine and on 16 at once, each on its own OS thread: how far this disk lets flushes
// overlap, with no runtime in the way. Rounds alternate between the two so that both see the
// same disk. bench/main.ts runs it with `go run` when Go is installed; prints one JSON line.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// write is one durable write of data to name in dir, through a temp file of its own.
func write(dir, name string, data []byte) error {
	temp := filepath.Join(dir, ".tmp-"+name)
	f, err := os.OpenFile(temp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err = f.Write(data); err == nil {
		err = f.Sync()
	}
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		err = os.Chmod(temp, 0o644)
	}
	if err == nil {
		err = os.Rename(temp, filepath.Join(dir, name))
	}
	return err
}

// slice keeps `writers` goroutines writing for d; returns the writes done and the time taken.
func slice(dir string, writers int, d time.Duration, data []byte) (int64, time.Duration) {
	var done atomic.Int64
	var group sync.WaitGroup
	start := time.Now()
	for w := 0; w < writers; w++ {
		group.Add(1)
		go func(w int) {
			defer group.Done()
			for i := 0; time.Since(start) < d; i++ {
				if err := write(dir, fmt.Sprintf("w%d-%d", w, i%16), data); err != nil {
					panic(err)
				}
				done.Add(1)
			}
		}(w)
	}
	group.Wait()
	return done.Load(), time.Since(start)
}

func main() {
	dir := flag.String("dir", "", "an empty directory to write in")
	size := flag.Int("size", 256, "value bytes")
	rounds := flag.Int("rounds", 20, "rounds of one slice each")
	flag.Parse()
	data := make([]byte, *size)
	var ops [2]int64
	var elapsed [2]time.Duration
	for r := 0; r < *rounds; r++ {
		for j := 0; j < 2; j++ {
			i := (r + j) % 2 // which goes first alternates
			n, d := slice(*dir, []int{1, 16}[i], 60*time.Millisecond, data)
			ops[i] += n
			elapsed[i] += d
		}
	}
	rate := func(i int) float64 { return float64(ops[i]) / elapsed[i].Seconds() }
	json.NewEncoder(os.Stdout).Encode(map[string]float64{"one": rate(0), "sixteen": rate(1)})
}
