package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/weir-dev/weir/internal/control"
)

const topUsage = `Usage:
  weir top ADDR [--interval 1s] [--once]

Shows the nodes of the pipeline whose control plane listens on ADDR (its
control.address, host:port) and refreshes every --interval: events in and
out per second, busy (the share of the stage's time spent working: near
100% it is the bottleneck), backpressure (the share spent waiting on a full
queue downstream), how full the node's input queue is, errors, and the lag
of inputs that can tell. Rates are averaged over the last 5 s. On a
terminal the table is redrawn in place; otherwise one table is printed per
interval. --once prints one table and exits.

Exit codes: 0 ok, 1 the control plane cannot be reached, 2 bad usage.
`

// cmdTop runs "weir top".
func cmdTop(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("top", flag.ContinueOnError)
	interval := fs.Duration("interval", time.Second, "time between refreshes")
	once := fs.Bool("once", false, "print one table and exit")
	pos, ok := interspersed(fs, args, stderr, topUsage)
	if !ok {
		return ExitConfig
	}
	if len(pos) != 1 {
		fmt.Fprintf(stderr, "weir top: expected one ADDR, got %d arguments\n\n%s", len(pos), topUsage)
		return ExitConfig
	}
	if *interval < 100*time.Millisecond {
		fmt.Fprintf(stderr, "weir top: --interval %v is too short: use 100ms or more\n", *interval)
		return ExitConfig
	}
	base, err := controlURL(pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "weir top: %v\n", err)
		return ExitConfig
	}
	client := controlClient()
	client.Timeout = 10 * time.Second
	defer client.CloseIdleConnections()
	terminal := isTerminal(stdout) && !*once
	t := time.NewTicker(*interval)
	defer t.Stop()
	for {
		st, code := fetchStats(ctx, client, base, stderr)
		if code != ExitOK {
			if ctx.Err() != nil {
				return ExitOK
			}
			return code
		}
		var b strings.Builder
		if terminal {
			b.WriteString("\033[H\033[2J")
		}
		writeTop(&b, st, base)
		if !terminal && !*once {
			b.WriteString("\n")
		}
		if _, err := io.WriteString(stdout, b.String()); err != nil || *once {
			return ExitOK
		}
		select {
		case <-ctx.Done():
			return ExitOK
		case <-t.C:
		}
	}
}

func fetchStats(ctx context.Context, client *http.Client, base string, stderr io.Writer) (control.Stats, int) {
	var st control.Stats
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/stats", nil)
	if err != nil {
		fmt.Fprintf(stderr, "weir top: %v\n", err)
		return st, ExitConfig
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			fmt.Fprintf(stderr, "weir top: cannot reach the control plane at %s: %v\n", base, err)
		}
		return st, ExitFailure
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return st, apiFailure("top", resp, stderr)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		fmt.Fprintf(stderr, "weir top: the answer of %s/api/v1/stats is not what weir top understands: %v\n", base, err)
		return st, ExitFailure
	}
	return st, ExitOK
}

// writeTop renders one table.
func writeTop(w io.Writer, st control.Stats, base string) {
	state := "running"
	if !st.Running {
		state = "not running"
	}
	head := fmt.Sprintf("weir top — pipeline %s at %s — %s, up %s — %s",
		st.Pipeline, strings.TrimPrefix(base, "http://"), state,
		(time.Duration(st.Uptime) * time.Second).String(), st.Time.Local().Format("15:04:05"))
	if c := st.Checkpoints; c != nil && c.LastID > 0 {
		head += fmt.Sprintf(" — checkpoint %d", c.LastID)
		if c.Age != nil {
			head += fmt.Sprintf(", %s ago", (time.Duration(*c.Age * float64(time.Second))).Truncate(100*time.Millisecond))
		}
	}
	fmt.Fprintln(w, head)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tKIND\tIN/S\tOUT/S\tBUSY\tBACKPR\tQUEUE\tERRORS\tLAG")
	for _, n := range st.Nodes {
		queue := "-"
		if n.Queue != nil {
			queue = pct(n.Queue.Fill)
		}
		lag := "-"
		if n.Lag != nil {
			lag = human(float64(*n.Lag))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, n.Kind,
			human(n.InRate), human(n.OutRate), pct(n.Busy), pct(n.Backpress), queue, human(float64(n.Errors)), lag)
	}
	_ = tw.Flush()
}

func pct(f float64) string {
	return strconv.FormatFloat(f*100, 'f', 0, 64) + "%"
}
