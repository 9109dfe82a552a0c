package testkit

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-dev/weir/internal/event"
)

func batchOf(ack *event.Ack, values ...string) *event.Batch {
	b := event.GetBatch()
	for i, v := range values {
		b.Append(event.Event{Value: []byte(v), Offset: int64(i), Ack: ack})
	}
	b.Born = 42
	return b
}

func TestRecordsAndAcks(t *testing.T) {
	var done atomic.Int32
	ack := event.NewAck(3, func() { done.Add(1) })
	var o Outlet
	b := batchOf(ack, "a", "b")
	src := b.Events[0].Value
	if err := o.Emit(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	src[0] = 'X' // the input's memory is not the record's
	if err := o.Reject(t.Context(), event.Event{Value: []byte("bad"), Ack: ack, Headers: []event.Header{{Key: "source", Value: []byte("f")}}}, errors.New("nope")); err != nil {
		t.Fatal(err)
	}
	if got := o.Values(); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("values %q", got)
	}
	if done.Load() != 1 || ack.Pending() != 0 {
		t.Fatalf("ack done %d pending %d", done.Load(), ack.Pending())
	}
	bs := o.Batches()
	if len(bs) != 1 || bs[0].Born != 42 || bs[0].Events[1].Offset != 1 || bs[0].Events[0].Ack != ack {
		t.Fatalf("batches %+v", bs)
	}
	rs := o.Rejects()
	if len(rs) != 1 || string(rs[0].Event.Value) != "bad" || rs[0].Err.Error() != "nope" {
		t.Fatalf("rejects %+v", rs)
	}
	if ev, by := o.Counts(); ev != 2 || by != 2 {
		t.Fatalf("counts %d %d", ev, by)
	}
}

func TestManualAck(t *testing.T) {
	var acked []int
	a0 := event.NewAck(2, func() { acked = append(acked, 0) })
	a1 := event.NewAck(2, func() { acked = append(acked, 1) })
	o := Outlet{ManualAck: true}
	ctx := t.Context()
	o.Emit(ctx, batchOf(a0, "x", "y"))
	o.Emit(ctx, batchOf(a1, "z"))
	o.Reject(ctx, event.Event{Value: []byte("r"), Ack: a1}, errors.New("bad"))
	if o.Pending() != 4 || len(acked) != 0 {
		t.Fatalf("pending %d acked %v", o.Pending(), acked)
	}
	if !o.AckBatch(1) || o.AckBatch(1) || o.AckBatch(7) {
		t.Fatal("AckBatch results")
	}
	if !o.AckReject(0) || o.AckReject(0) {
		t.Fatal("AckReject results")
	}
	if n := o.Ack(); n != 2 || o.Pending() != 0 {
		t.Fatalf("Ack gave back %d, pending %d", n, o.Pending())
	}
	if !slices.Equal(acked, []int{1, 0}) {
		t.Fatalf("completion order %v", acked)
	}
}

func TestBlock(t *testing.T) {
	var o Outlet
	o.Block()
	done := make(chan error, 1)
	go func() { done <- o.Emit(context.Background(), batchOf(nil, "a")) }()
	if err := o.Wait(t.Context(), func(o *Outlet) bool { return o.WaitingLocked() == 1 }); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
		t.Fatal("Emit returned while blocked")
	case <-time.After(10 * time.Millisecond):
	}
	o.Unblock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := o.WaitEvents(t.Context(), 1); err != nil {
		t.Fatal(err)
	}

	o.Block()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := o.Emit(ctx, batchOf(nil, "b")); !errors.Is(err, context.Canceled) {
		t.Fatalf("blocked Emit with a cancelled context: %v", err)
	}
	if ev, _ := o.Counts(); ev != 1 {
		t.Fatalf("%d events recorded", ev)
	}
}

func TestErrorsAndCountOnly(t *testing.T) {
	boom := errors.New("boom")
	o := Outlet{EmitErr: boom, RejectErr: boom}
	if err := o.Emit(t.Context(), batchOf(nil, "a")); err != boom {
		t.Fatalf("Emit: %v", err)
	}
	if err := o.Reject(t.Context(), event.Event{}, boom); err != boom {
		t.Fatalf("Reject: %v", err)
	}
	c := Outlet{CountOnly: true}
	ack := event.NewAck(2, nil)
	c.Emit(t.Context(), batchOf(ack, "ab", "c"))
	if ev, by := c.Counts(); ev != 2 || by != 3 || len(c.Batches()) != 0 || ack.Pending() != 0 {
		t.Fatalf("count only: %d events %d bytes %d batches, pending %d", ev, by, len(c.Batches()), ack.Pending())
	}
}

func TestWaitTimesOut(t *testing.T) {
	var o Outlet
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	if err := o.WaitRejects(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitRejects: %v", err)
	}
}
