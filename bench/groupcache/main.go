// The groupcache side of bench/groupcache_run.sh: Debian's groupcache
// (golang-github-golang-groupcache-dev) in the setting Packice's cache groups are measured in
// (bench/group_cluster_bench.cc): three nodes on loopback, one group, values loaded from one
// HTTP origin.
//
//	main -mode origin -listen 127.0.0.1:P -size N        values of N bytes for any key
//	main -mode node -self http://A -peers http://A,http://B,http://C -origin http://O/{key}
//	     [-bench -keys K -clients C -duration D]           a node; with -bench it measures
//
// A benchmarking node first loads every key once (the misses), then reads keys owned by itself
// and keys owned by other nodes from C goroutines for D each, and prints one JSON line per
// case: ops per second, p50 and p99 latency in microseconds.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang/groupcache"
)

var (
	mode     = flag.String("mode", "node", "origin or node")
	listen   = flag.String("listen", "127.0.0.1:0", "origin: where to listen")
	size     = flag.Int("size", 1024, "origin: bytes per value; node: the size it reports")
	self     = flag.String("self", "", "node: this node's base URL")
	peers    = flag.String("peers", "", "node: every node's base URL, comma-separated")
	origin   = flag.String("origin", "", "node: origin URL template with {key}")
	capacity = flag.Int64("capacity", 1<<30, "node: group capacity in bytes")
	bench    = flag.Bool("bench", false, "node: run the benchmark and exit")
	keys     = flag.Int("keys", 1000, "bench: number of keys")
	clients  = flag.Int("clients", 8, "bench: concurrent readers")
	duration = flag.Duration("duration", 3*time.Second, "bench: time per case")
)

func serveOrigin() {
	value := make([]byte, *size)
	for i := range value {
		value[i] = byte(i)
	}
	var loads int64
	http.HandleFunc("/count", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%d\n", atomic.LoadInt64(&loads))
	})
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		atomic.AddInt64(&loads, 1)
		w.Write(value)
	})
	log.Fatal(http.ListenAndServe(*listen, nil))
}

func load(client *http.Client, key string) ([]byte, error) {
	resp, err := client.Get(strings.ReplaceAll(*origin, "{key}", key))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("origin: %s", resp.Status)
	}
	return io.ReadAll(resp.Body)
}

type result struct {
	System  string  `json:"system"`
	Case    string  `json:"case"`
	Size    int     `json:"size"`
	Clients int     `json:"clients"`
	Ops     float64 `json:"ops_per_s"`
	P50     float64 `json:"p50_us"`
	P99     float64 `json:"p99_us"`
}

// run reads `ks` round robin from `clients` goroutines for `duration`.
func run(g *groupcache.Group, name string, ks []string) result {
	var wg sync.WaitGroup
	lat := make([][]time.Duration, *clients)
	deadline := time.Now().Add(*duration)
	start := time.Now()
	for c := 0; c < *clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			var v []byte
			for i := c; time.Now().Before(deadline); i++ {
				t := time.Now()
				if err := g.Get(context.Background(), ks[i%len(ks)], groupcache.AllocatingByteSliceSink(&v)); err != nil {
					log.Fatalf("get: %v", err)
				}
				lat[c] = append(lat[c], time.Since(t))
			}
		}(c)
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	us := func(q float64) float64 { return float64(all[int(q*float64(len(all)-1))].Nanoseconds()) / 1e3 }
	return result{"groupcache", name, *size, *clients, float64(len(all)) / elapsed.Seconds(), us(0.5), us(0.99)}
}

func main() {
	flag.Parse()
	if *mode == "origin" {
		serveOrigin()
		return
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	pool := groupcache.NewHTTPPoolOpts(*self, &groupcache.HTTPPoolOptions{})
	pool.Set(strings.Split(*peers, ",")...)
	g := groupcache.NewGroup("bench", *capacity, groupcache.GetterFunc(
		func(ctx context.Context, key string, dest groupcache.Sink) error {
			v, err := load(client, key)
			if err != nil {
				return err
			}
			return dest.SetBytes(v)
		}))
	addr := strings.TrimPrefix(*self, "http://")
	go func() { log.Fatal(http.ListenAndServe(addr, pool)) }()
	if !*bench {
		select {}
	}
	// Wait until every peer answers (they start in parallel).
	for _, p := range strings.Split(*peers, ",") {
		for {
			if resp, err := http.Get(p + "/_groupcache/"); err == nil {
				resp.Body.Close()
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	var local, remote []string
	for i := 0; i < *keys; i++ {
		k := fmt.Sprintf("key-%d", i)
		if _, ok := pool.PickPeer(k); ok {
			remote = append(remote, k)
		} else {
			local = append(local, k)
		}
	}
	// The misses: every key once, loaded by its owner.
	t := time.Now()
	var v []byte
	for i := 0; i < *keys; i++ {
		if err := g.Get(context.Background(), fmt.Sprintf("key-%d", i), groupcache.AllocatingByteSliceSink(&v)); err != nil {
			log.Fatalf("get: %v", err)
		}
	}
	miss := time.Since(t)
	enc := json.NewEncoder(os.Stdout)
	enc.Encode(result{"groupcache", "miss", *size, 1, float64(*keys) / miss.Seconds(), 0, 0})
	enc.Encode(run(g, "hit_local_owner", local))
	enc.Encode(run(g, "hit_remote_owner", remote))
}
