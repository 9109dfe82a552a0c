package runtime

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestKafkaPartitionMatchesTheProducer: the partition the changelog puts a
// key's state in is the one a Kafka producer with the default partitioner
// puts the key's records in (franz-go's, which is the Java client's).
func TestKafkaPartitionMatchesTheProducer(t *testing.T) {
	tp := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	for _, n := range []int32{1, 3, 12, 100} {
		for i := range 2000 {
			key := fmt.Appendf(nil, "key-%d", i)
			if i%7 == 0 {
				key = key[:i%5] // short keys: every tail length of murmur2
			}
			want := int32(tp.Partition(&kgo.Record{Key: key}, int(n)))
			if got := KafkaPartition(key, n); got != want {
				t.Fatalf("key %q over %d partitions: %d, the producer says %d", key, n, got, want)
			}
		}
	}
}

// fakeKeyed is a KeyedState whose state keys are <instance 2><key>.
type fakeKeyed struct{}

func (fakeKeyed) Restore(context.Context, StateReader) error  { return nil }
func (fakeKeyed) Snapshot(context.Context, StateWriter) error { return nil }
func (fakeKeyed) Committed(context.Context, uint64) error     { return nil }
func (fakeKeyed) EventKey(k []byte) ([]byte, bool)            { return k[2:], len(k) > 2 }
func (fakeKeyed) Release(func([]byte) bool, StateWriter) error {
	return nil
}
func (fakeKeyed) Acquire(func([]byte) bool, StateReader) error { return nil }

// TestChangelogRecordsHeldPartitions: writes of keys whose partition the
// process holds become records, the last write of a key wins, deletions
// are tombstones, other partitions' keys and writes while disabled are
// left out, and appended records keep their order after the keyed ones.
func TestChangelogRecordsHeldPartitions(t *testing.T) {
	cl := newChangelog(&coordinator{}, slog.New(slog.DiscardHandler), nil)
	ks := fakeKeyed{}
	sk := func(key string) []byte { return append([]byte{0, 0}, key...) }
	cl.record("w", ks, sk("a"), []byte("1"), false, false) // disabled: dropped
	if err := cl.Enable("g-changelog", 4); err != nil {
		t.Fatal(err)
	}
	pa := KafkaPartition([]byte("a"), 4)
	b := "b"
	for i := 0; KafkaPartition([]byte(b), 4) == pa; i++ {
		b = fmt.Sprint("b", i)
	}
	pb := KafkaPartition([]byte(b), 4)
	cl.held[pa] = true
	cl.record("w", ks, sk("a"), []byte("1"), false, false)
	cl.record("w", ks, sk("a"), []byte("2"), false, false)
	cl.record("w", ks, sk(b), []byte("x"), false, false) // not held
	cl.record("w", ks, sk(b), []byte("y"), false, true)  // forced (a release)
	cl.record("w", ks, []byte{0, 0}, []byte("wm"), false, false)
	cl.Append("d", 2, []byte("id1"), []byte{1})
	cl.Append("d", 0, []byte("id0"), []byte{1})
	got := cl.Take()
	type rec struct {
		part       int32
		key, value string
	}
	want := []rec{{pa, "w\x00a", "2"}, {pb, "w\x00" + b, "y"}, {2, "d\x00id1", "\x01"}, {0, "d\x00id0", "\x01"}}
	if len(got) != len(want) {
		t.Fatalf("records %v, want %v", got, want)
	}
	for i, r := range got {
		if w := want[i]; r.Part != w.part || string(r.Key) != w.key || string(r.Value) != w.value {
			t.Errorf("record %d: %d %q=%q, want %d %q=%q", i, r.Part, r.Key, r.Value, w.part, w.key, w.value)
		}
	}
	cl.record("w", ks, sk("a"), nil, true, false)
	got = cl.Take()
	if len(got) != 1 || got[0].Value != nil || string(got[0].Key) != "w\x00a" {
		t.Fatalf("after a deletion: %v, want one tombstone of a", got)
	}
	if got := cl.Take(); got != nil {
		t.Fatalf("a second Take: %v, want nothing", got)
	}
}
