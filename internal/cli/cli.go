// Package cli implements the weir command line: run, validate, graph,
// version, the log and checkpoint inspectors, and tail and top, which
// watch a running pipeline through its control plane. Main returns the
// process exit code: 0 on success, 1 for a runtime failure, 2 for a bad
// config or bad usage.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	rt "runtime"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/weir-dev/weir/internal/app"
	"github.com/weir-dev/weir/internal/config"
	"github.com/weir-dev/weir/internal/control"
	"github.com/weir-dev/weir/internal/logging"
	"github.com/weir-dev/weir/internal/runtime"
	"github.com/weir-dev/weir/internal/state"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitConfig  = 2
)

// Version is set at build time with -ldflags "-X .../cli.Version=v1.2.3";
// otherwise it comes from the module build info.
var Version = ""

const usage = `weir — stream processing and event pipelines in one binary

Usage:
  weir run FILE         run the pipeline in FILE until its inputs end or Ctrl-C
  weir validate FILE    check FILE and report every problem with its position
  weir graph [-format text|dot] FILE
                        print the pipeline's dataflow graph
  weir log inspect|dump|tail DIR
                        inspect or print a log directory (weir log help)
  weir checkpoint list|inspect DIR
                        the checkpoints in a state.dir (weir checkpoint help)
  weir tail ADDR NODE [--filter EXPR] [--limit N] [--rate N]
                        sampled events a node of a running pipeline emits, as NDJSON
  weir top ADDR [--interval 1s] [--once]
                        the nodes of a running pipeline: rates, load, queues
  weir kafka topics|describe|tail --brokers HOST:PORT [TOPIC]
                        topics, partitions and records of a Kafka cluster (weir kafka help)
  weir version          print the version

Exit codes: 0 ok, 1 runtime failure, 2 bad config or usage.
Docs: docs/ in the weir repository.
`

// Main runs the command line. ctx is cancelled on the first interrupt.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return ExitConfig
	}
	switch args[0] {
	case "run":
		return cmdRun(ctx, args[1:], stdout, stderr)
	case "validate":
		return cmdValidate(args[1:], stdout, stderr)
	case "graph":
		return cmdGraph(args[1:], stdout, stderr)
	case "log":
		return cmdLog(ctx, args[1:], stdout, stderr)
	case "checkpoint":
		return cmdCheckpoint(args[1:], stdout, stderr)
	case "tail":
		return cmdTail(ctx, args[1:], stdout, stderr)
	case "top":
		return cmdTop(ctx, args[1:], stdout, stderr)
	case "kafka":
		return cmdKafka(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "weir", versionString())
		return ExitOK
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
		return ExitOK
	default:
		fmt.Fprintf(stderr, "weir: unknown command %q\n\n%s", args[0], usage)
		return ExitConfig
	}
}

func versionString() string {
	v := Version
	if bi, ok := debug.ReadBuildInfo(); ok && v == "" {
		v = bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " " + s.Value[:12]
			}
		}
	}
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	return fmt.Sprintf("%s (%s, %s/%s)", v, rt.Version(), rt.GOOS, rt.GOARCH)
}

// oneFile parses flags and the single FILE argument of a command.
func oneFile(fs *flag.FlagSet, args []string, stderr io.Writer) (string, bool) {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return "", false
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(stderr, "weir %s: expected one pipeline FILE, got %d arguments\n", fs.Name(), fs.NArg())
		return "", false
	}
	return fs.Arg(0), true
}

// load loads a pipeline and prints config errors; ok=false means exit 2.
func load(path string, stderr io.Writer) (*app.Loaded, bool) {
	l, err := app.Load(path)
	if err != nil {
		var errs config.Errors
		var one *config.Error
		switch {
		case errors.As(err, &errs):
			fmt.Fprintln(stderr, errs.Error())
			fmt.Fprintf(stderr, "%d problem(s) in %s\n", len(errs), path)
		case errors.As(err, &one):
			fmt.Fprintln(stderr, one.Error())
		default:
			fmt.Fprintf(stderr, "weir: %v\n", err)
		}
		return nil, false
	}
	return l, true
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	path, ok := oneFile(fs, args, stderr)
	if !ok {
		return ExitConfig
	}
	l, ok := load(path, stderr)
	if !ok {
		return ExitConfig
	}
	fmt.Fprintf(stdout, "%s: ok: pipeline %q, %d nodes in %d stages\n", path, l.Graph.Name, len(l.Graph.Nodes), len(l.Graph.Stages))
	return ExitOK
}

func cmdGraph(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("graph", flag.ContinueOnError)
	format := fs.String("format", "text", "output format: text or dot")
	path, ok := oneFile(fs, args, stderr)
	if !ok {
		return ExitConfig
	}
	l, ok := load(path, stderr)
	if !ok {
		return ExitConfig
	}
	var err error
	switch *format {
	case "text":
		err = l.Graph.WriteText(stdout)
	case "dot":
		err = l.Graph.WriteDOT(stdout)
	default:
		fmt.Fprintf(stderr, "weir graph: unknown format %q (expected text or dot)\n", *format)
		return ExitConfig
	}
	if err != nil {
		fmt.Fprintf(stderr, "weir graph: %v\n", err)
		return ExitFailure
	}
	return ExitOK
}

// newLogger builds weir's logger: text or JSON, and repeated warnings and
// errors rate-limited (5 of a kind per 10 s, then one summary), so that an
// incident cannot fill a disk with logs.
func newLogger(cfg config.Logging, w io.Writer) *slog.Logger {
	level := slog.LevelInfo
	_ = level.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if cfg.Format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(logging.NewLimiter(h, 10*time.Second, 5))
}

// flushLogs writes the summaries of what the logger held back.
func flushLogs(logger *slog.Logger) {
	if l, ok := logger.Handler().(*logging.Limiter); ok {
		l.Flush(context.Background())
	}
}

// cpuProcs is GOMAXPROCS as Go set it at start: the CPUs the process may
// use. runtime.extra_procs adds to it (once, however many runs a process
// makes).
var cpuProcs = rt.GOMAXPROCS(0)

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	path, ok := oneFile(fs, args, stderr)
	if !ok {
		return ExitConfig
	}
	l, ok := load(path, stderr)
	if !ok {
		return ExitConfig
	}
	logger := newLogger(l.Config.Logging, stderr)
	defer flushLogs(logger)
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(l.Config.Runtime.GCPercent)
	}
	if n := l.Config.Runtime.ExtraProcs; n > 0 && os.Getenv("GOMAXPROCS") == "" {
		rt.GOMAXPROCS(cpuProcs + n)
	}
	if lim := int64(l.Config.Runtime.MemoryLimit); lim > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(goMemoryLimit(lim, l, logger))
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	opts := l.RuntimeOptions()
	opts.Logger = logger
	opts.Registerer = reg
	store, closeStore, err := l.OpenState(logger)
	if err != nil {
		logger.Error("cannot open the state store", slog.Any("err", err))
		return ExitFailure
	}
	defer func() {
		if err := closeStore(); err != nil {
			logger.Error("closing the state store", slog.Any("err", err))
		}
	}()
	var ckpts *control.Checkpoints
	if store != nil && l.Config.Control.Address != "" {
		ckpts = control.WatchCheckpoints(store) // for the API
		store = ckpts
	}
	opts.Store = store
	p, err := runtime.New(l.Graph, l.Factory(), opts)
	if err != nil {
		logger.Error("cannot start pipeline", slog.Any("err", err))
		return ExitFailure
	}
	var srv *control.Server
	if addr := l.Config.Control.Address; addr != "" {
		srv, err = control.Start(addr, control.Options{Gatherer: reg, Logger: logger, Pipeline: p, Checkpoints: ckpts})
		if err != nil {
			logger.Error("cannot start control plane", slog.Any("err", err))
			return ExitFailure
		}
		defer func() { _ = srv.Close(context.Background()) }()
		logger.Info("control plane listening", slog.String("address", "http://"+srv.Addr()), slog.String("metrics", "http://"+srv.Addr()+"/metrics"))
		srv.SetReady(true)
	}
	st := newStatus(p, l.Config.Status, statusTerminal(l, stdout, stderr), stderr, logger)
	stopNotice := context.AfterFunc(ctx, func() {
		if st.terminal {
			st.clear()
		}
		logger.Info("interrupt: stopping gracefully; press Ctrl-C again to exit at once")
	})
	defer stopNotice()
	stopStatus := st.start()
	logger.Info("pipeline running", slog.String("pipeline", l.Graph.Name), slog.Int("nodes", len(l.Graph.Nodes)), slog.Int("stages", len(l.Graph.Stages)))
	err = p.Run(ctx)
	stopStatus()
	st.summary(err)
	if err != nil {
		return ExitFailure
	}
	return ExitOK
}

// statusTerminal reports whether a live status line may be drawn: stderr is
// a terminal and no output writes to the same terminal through stdout.
func statusTerminal(l *app.Loaded, stdout, stderr io.Writer) bool {
	if !isTerminal(stderr) {
		return false
	}
	for _, n := range l.Graph.Nodes {
		if n.Type == "stdout" && isTerminal(stdout) {
			return false
		}
	}
	return true
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// goMemoryLimit is the part of runtime.memory_limit the Go runtime gets:
// the state store's block cache and memtables are allocated by Pebble
// outside the Go heap (state.OffHeap), so they come off the limit. A quarter of the limit
// is always left to Go.
func goMemoryLimit(limit int64, l *app.Loaded, logger *slog.Logger) int64 {
	goLim := limit
	if l.Config.State.Dir != "" {
		goLim -= state.OffHeap(int64(l.Config.State.BlockCache))
	}
	if goLim < limit/4 {
		logger.Warn("runtime.memory_limit leaves little room beside the state store's block cache and memtables: lower state.block_cache",
			slog.Int64("memory_limit", limit), slog.Int64("block_cache", int64(l.Config.State.BlockCache)))
		goLim = limit / 4
	}
	return goLim
}
