// Command go-tlog checks a Vellum log (or its access or index log) the way an independent
// tlog-tiles client would, using only Go's golang.org/x/mod/sumdb/note and sumdb/tlog (the code
// behind the Go checksum database), not Vellum's own verifier:
//
//   - the checkpoint's signature by the given verifier key (C2SP signed-note; witness
//     cosignatures, of a key type note does not know, are ignored), and its origin line;
//   - every hash tile it needs, each checked against the checkpoint's root by tlog's
//     TileHashReader (C2SP tlog-tiles paths: tile/L/N, without sumdb's height segment);
//   - every entry bundle: each entry's RFC 6962 record hash equals the tree's stored leaf
//     hash, and an inclusion proof from tlog.ProveRecord passes tlog.CheckRecord;
//   - with -old-size and -old-root, a consistency proof (tlog.ProveTree, tlog.CheckTree).
//
// It prints one JSON line {"origin","size","root","entries"} and exits 0, or says what failed
// and exits 1. Built by test/interop/go-tlog.test.ts with Debian's golang-go and
// golang-golang-x-mod-dev (GOPATH mode, no module download).
package main

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const tileHeight = 8 // C2SP tlog-tiles: 256 hashes or entries per full tile

type client struct {
	base  string // e.g. http://127.0.0.1:8080/access
	token string
}

func (c *client) get(path string) ([]byte, error) {
	req, err := http.NewRequest("GET", c.base+"/"+path, nil)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != 200 {
		return nil, fmt.Errorf("GET %s: HTTP %d: %s", path, res.StatusCode, strings.TrimSpace(string(body)))
	}
	return body, nil
}

// tilesPath turns sumdb's tile path ("tile/8/L/N[.p/W]") into C2SP tlog-tiles' ("tile/L/N[.p/W]").
func tilesPath(t tlog.Tile) string {
	return "tile/" + strings.TrimPrefix(t.Path(), "tile/8/")
}

// tileReader fetches hash tiles for tlog.TileHashReader, which checks them against the tree
// (it verifies each tile it is handed, cached or not). Tiles are kept once fetched, as sumdb's own
// client does: a proof per entry would otherwise fetch the same tiles again and again.
type tileReader struct {
	c     *client
	cache map[string][]byte
}

func (r tileReader) Height() int { return tileHeight }

func (r tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		path := tilesPath(t)
		if data, ok := r.cache[path]; ok {
			out[i] = data
			continue
		}
		data, err := r.c.get(path)
		if err != nil {
			return nil, err
		}
		r.cache[path] = data
		out[i] = data
	}
	return out, nil
}

func (r tileReader) SaveTiles([]tlog.Tile, [][]byte) {}

// bundlePath is the entry bundle holding entry n of a tree of `size` (tlog-tiles).
func bundlePath(n, size int64) string {
	t := tlog.Tile{H: tileHeight, L: 0, N: n / 256, W: 256}
	if rest := size - t.N*256; rest < 256 {
		t.W = int(rest)
	}
	return "tile/entries/" + strings.TrimPrefix(t.Path(), "tile/8/0/")
}

func parseBundle(data []byte, want int) ([][]byte, error) {
	var entries [][]byte
	for len(data) > 0 {
		if len(data) < 2 {
			return nil, errors.New("entry bundle: truncated length")
		}
		n := int(binary.BigEndian.Uint16(data))
		if len(data) < 2+n {
			return nil, errors.New("entry bundle: truncated entry")
		}
		entries = append(entries, data[2:2+n])
		data = data[2+n:]
	}
	if len(entries) != want {
		return nil, fmt.Errorf("entry bundle: %d entries, want %d", len(entries), want)
	}
	return entries, nil
}

type checkpoint struct {
	origin string
	tree   tlog.Tree
}

func openCheckpoint(msg []byte, vkey string) (checkpoint, error) {
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		return checkpoint{}, fmt.Errorf("verifier key: %w", err)
	}
	n, err := note.Open(msg, note.VerifierList(verifier))
	if err != nil {
		return checkpoint{}, fmt.Errorf("checkpoint: %w", err)
	}
	lines := strings.SplitN(n.Text, "\n", 4)
	if len(lines) < 4 {
		return checkpoint{}, errors.New("checkpoint: fewer than three lines")
	}
	if lines[0] != verifier.Name() {
		return checkpoint{}, fmt.Errorf("checkpoint: origin %q, not the key's %q", lines[0], verifier.Name())
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 {
		return checkpoint{}, fmt.Errorf("checkpoint: bad size %q", lines[1])
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize {
		return checkpoint{}, fmt.Errorf("checkpoint: bad root %q", lines[2])
	}
	var h tlog.Hash
	copy(h[:], root)
	return checkpoint{origin: lines[0], tree: tlog.Tree{N: size, Hash: h}}, nil
}

func run() error {
	url := flag.String("url", "", "the log's base URL (e.g. http://127.0.0.1:8080 or …/access)")
	vkey := flag.String("vkey", "", "the log's verifier key")
	token := flag.String("token", "", "bearer token for entry bundles, if they need one")
	oldSize := flag.Int64("old-size", -1, "a size the log had, to prove consistency from")
	oldRoot := flag.String("old-root", "", "the root hash (base64) the log had at -old-size")
	flag.Parse()
	if *url == "" || *vkey == "" {
		return errors.New("usage: go-tlog -url URL -vkey VKEY [-token T] [-old-size N -old-root B64]")
	}
	c := &client{base: strings.TrimSuffix(*url, "/"), token: *token}
	msg, err := c.get("checkpoint")
	if err != nil {
		return err
	}
	cp, err := openCheckpoint(msg, *vkey)
	if err != nil {
		return err
	}
	tree := cp.tree
	reader := tlog.TileHashReader(tree, tileReader{c, map[string][]byte{}})
	root, err := tlog.TreeHash(tree.N, reader)
	if err != nil {
		return fmt.Errorf("tree hash: %w", err)
	}
	if root != tree.Hash {
		return errors.New("the tiles make another root than the checkpoint's")
	}
	for start := int64(0); start < tree.N; start += 256 {
		data, err := c.get(bundlePath(start, tree.N))
		if err != nil {
			return err
		}
		want := int(tree.N - start)
		if want > 256 {
			want = 256
		}
		entries, err := parseBundle(data, want)
		if err != nil {
			return err
		}
		for i, e := range entries {
			n := start + int64(i)
			stored, err := reader.ReadHashes([]int64{tlog.StoredHashIndex(0, n)})
			if err != nil {
				return fmt.Errorf("leaf hash %d: %w", n, err)
			}
			record := tlog.RecordHash(e)
			if stored[0] != record {
				return fmt.Errorf("entry %d: its record hash is not the tree's leaf hash", n)
			}
			proof, err := tlog.ProveRecord(tree.N, n, reader)
			if err != nil {
				return fmt.Errorf("inclusion proof %d: %w", n, err)
			}
			if err := tlog.CheckRecord(proof, tree.N, tree.Hash, n, record); err != nil {
				return fmt.Errorf("inclusion proof %d: %w", n, err)
			}
		}
	}
	if *oldSize >= 0 {
		old, err := base64.StdEncoding.DecodeString(*oldRoot)
		if err != nil || len(old) != tlog.HashSize {
			return errors.New("-old-root: not a base64 hash")
		}
		var oldHash tlog.Hash
		copy(oldHash[:], old)
		proof, err := tlog.ProveTree(tree.N, *oldSize, reader)
		if err != nil {
			return fmt.Errorf("consistency proof: %w", err)
		}
		if err := tlog.CheckTree(proof, tree.N, tree.Hash, *oldSize, oldHash); err != nil {
			return fmt.Errorf("consistency proof from %d: %w", *oldSize, err)
		}
	}
	out, _ := json.Marshal(map[string]any{
		"origin":  cp.origin,
		"size":    tree.N,
		"root":    base64.StdEncoding.EncodeToString(tree.Hash[:]),
		"entries": tree.N,
	})
	fmt.Println(string(out))
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "go-tlog:", err)
		os.Exit(1)
	}
}
