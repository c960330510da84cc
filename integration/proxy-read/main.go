// proxy-read reads a blob the way containerd's differ does behind proxy_plugins: containerd
// 1.6's proxy content store (content/proxy), one ReadAt RPC per 32 KiB the reader asks for,
// one after another. It writes a blob of random bytes through the same client first (or finds
// it there), then times -calls ReadAt calls of -chunk bytes, sequential through the blob and
// starting again at its end. It prints one line:
//
//	calls=N wall_us_per_call=X client_cpu_us_per_call=Y
//
// where the CPU is this process's own (utime + stime): what containerd itself spends per call.
//
// With -ingest it times the write instead (containerd's content.WriteBlob: a STAT, then 1 MiB
// WRITE calls each answered before the next, then COMMIT), of a blob that must not exist yet
// (pass a fresh -seed), deletes it (untimed), and prints
//
//	mib=N ingest_mib_per_s=X client_cpu_ms=Y
//
// Usage: proxy-read -a <proxy socket> [-mib 64] [-calls 5000] [-chunk 32768] [-seed 1] [-ingest]
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"syscall"
	"time"

	contentapi "github.com/containerd/containerd/api/services/content/v1"
	"github.com/containerd/containerd/content"
	"github.com/containerd/containerd/content/proxy"
	"github.com/containerd/containerd/namespaces"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		fail("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "proxy-read: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	sock := flag.String("a", "", "the proxy plugin's socket")
	mib := flag.Int("mib", 64, "blob size in MiB")
	calls := flag.Int("calls", 5000, "ReadAt calls to time")
	chunk := flag.Int("chunk", 32<<10, "bytes per ReadAt (containerd's decompressor asks for 32 KiB)")
	seed := flag.Int64("seed", 1, "seed of the blob's bytes")
	ingest := flag.Bool("ingest", false, "time writing the blob (it must not exist) and exit")
	flag.Parse()
	if *sock == "" || *mib < 1 || *calls < 1 || *chunk < 1 {
		fail("usage: proxy-read -a SOCKET [-mib N] [-calls N] [-chunk BYTES] [-seed N] [-ingest]")
	}
	// As containerd dials a proxy plugin: grpc defaults, target unix://<path> (so :authority is
	// "localhost"; a bare path there is a protocol error to Go's HTTP/2 server).
	conn, err := grpc.Dial("unix://"+*sock, grpc.WithInsecure(), grpc.WithBlock(),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", *sock)
		}))
	if err != nil {
		fail("dial %s: %v", *sock, err)
	}
	defer conn.Close()
	store := proxy.NewContentStore(contentapi.NewContentClient(conn))
	ctx := namespaces.WithNamespace(context.Background(), "default")

	data := make([]byte, *mib<<20)
	rand.New(rand.NewSource(*seed)).Read(data)
	desc := ocispec.Descriptor{Digest: digest.FromBytes(data), Size: int64(len(data))}
	if *ingest {
		timeIngest(ctx, store, data, desc)
		return
	}
	if _, err := store.Info(ctx, desc.Digest); err != nil {
		if err := writeBlob(ctx, store, "proxy-read-", data, desc); err != nil {
			fail("write the blob: %v", err)
		}
	}

	buf := make([]byte, *chunk)
	var off int64
	c0, t0 := cpuTime(), time.Now()
	ra, err := store.ReaderAt(ctx, desc)
	if err != nil {
		fail("open %s: %v", desc.Digest, err)
	}
	for i := 0; i < *calls; i++ {
		if off >= desc.Size {
			off = 0
		}
		n, err := ra.ReadAt(buf, off)
		if err != nil && !(err == io.EOF && n > 0) {
			fail("ReadAt %d: %v", off, err)
		}
		if want := desc.Size - off; n != *chunk && int64(n) != want {
			fail("ReadAt %d: %d bytes", off, n)
		}
		if !bytes.Equal(buf[:n], data[off:off+int64(n)]) {
			fail("ReadAt %d: bytes differ from the blob's", off)
		}
		off += int64(n)
	}
	wall, cpu := time.Since(t0), cpuTime()-c0
	ra.Close()
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 / float64(*calls) }
	fmt.Printf("calls=%d wall_us_per_call=%.2f client_cpu_us_per_call=%.2f\n", *calls, per(wall), per(cpu))
}

// timeIngest writes the blob as containerd's puller and importer do and prints the rate.
func timeIngest(ctx context.Context, store content.Store, data []byte, desc ocispec.Descriptor) {
	if _, err := store.Info(ctx, desc.Digest); err == nil {
		fail("blob %s exists: -ingest needs a fresh -seed", desc.Digest)
	}
	c0, t0 := cpuTime(), time.Now()
	if err := writeBlob(ctx, store, "proxy-ingest-", data, desc); err != nil {
		fail("write the blob: %v", err)
	}
	wall, cpu := time.Since(t0), cpuTime()-c0
	if err := store.Delete(ctx, desc.Digest); err != nil {
		fail("delete the blob: %v", err)
	}
	mib := float64(len(data)) / float64(1<<20)
	fmt.Printf("mib=%.0f ingest_mib_per_s=%.1f client_cpu_ms=%.1f\n", mib, mib/wall.Seconds(), float64(cpu.Microseconds())/1e3)
}

// writeBlob writes data under a ref named by prefix and its digest as containerd's fetches
// do: content.WriteBlob with the size and digest declared.
func writeBlob(ctx context.Context, store content.Store, prefix string, data []byte, desc ocispec.Descriptor) error {
	// Hide bytes.Reader's WriteTo: content.Copy then writes 1 MiB at a time, as containerd does.
	src := struct{ io.Reader }{bytes.NewReader(data)}
	return content.WriteBlob(ctx, store, prefix+desc.Digest.Encoded()[:16], src, desc)
}
