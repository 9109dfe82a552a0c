package discard

import (
	"testing"

	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/runtime"
)

func TestCounts(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	out, err := New(DefaultConfig(), runtime.Env{Node: "sink"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	out.Write(ctx, []event.Event{{Value: []byte("abc")}, {Value: []byte("de")}})
	out.Write(ctx, nil)
	out.Write(ctx, []event.Event{{Value: nil}})
	if err := out.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if ev, b := out.(*Output).Counts(); ev != 3 || b != 5 {
		t.Fatalf("counts %d events %d bytes, want 3 and 5", ev, b)
	}
}
