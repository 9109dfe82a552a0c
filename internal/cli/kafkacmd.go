package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const kafkaUsage = `Usage:
  weir kafka topics --brokers HOST:PORT[,…]
                        topics with their partitions and replication
  weir kafka describe --brokers HOST:PORT[,…] TOPIC
                        each partition's leader, replicas and offsets
  weir kafka tail --brokers HOST:PORT[,…] [--from beginning|end] [--limit N] TOPIC
                        records as NDJSON, then new ones until Ctrl-C

The brokers may also come from WEIR_KAFKA_BROKERS.
Exit codes: 0 ok, 1 broker or read failure, 2 bad usage.
`

// cmdKafka runs "weir kafka SUBCOMMAND".
func cmdKafka(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, kafkaUsage)
		return ExitConfig
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, kafkaUsage) }
	brokers := fs.String("brokers", os.Getenv("WEIR_KAFKA_BROKERS"), "seed brokers, comma-separated")
	from := fs.String("from", "end", "tail: where to start, beginning or end")
	limit := fs.Int("limit", 0, "tail: stop after N records (0: no limit)")
	switch args[0] {
	case "topics", "describe", "tail":
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, kafkaUsage)
		return ExitOK
	default:
		fmt.Fprintf(stderr, "weir kafka: unknown command %q\n\n%s", args[0], kafkaUsage)
		return ExitConfig
	}
	var pos []string
	rest := args[1:]
	for {
		if err := fs.Parse(rest); err != nil {
			return ExitConfig
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if *brokers == "" {
		fmt.Fprintf(stderr, "weir kafka %s: no brokers: give --brokers or set WEIR_KAFKA_BROKERS\n", args[0])
		return ExitConfig
	}
	wantArgs := 1
	if args[0] == "topics" {
		wantArgs = 0
	}
	if len(pos) != wantArgs {
		fmt.Fprintf(stderr, "weir kafka %s: expected %d argument(s), got %d\n\n%s", args[0], wantArgs, len(pos), kafkaUsage)
		return ExitConfig
	}
	if *from != "beginning" && *from != "end" {
		fmt.Fprintf(stderr, "weir kafka tail: --from is %q, want beginning or end\n", *from)
		return ExitConfig
	}
	seeds := strings.Split(*brokers, ",")
	var err error
	switch args[0] {
	case "topics":
		err = kafkaTopics(ctx, seeds, stdout)
	case "describe":
		err = kafkaDescribe(ctx, seeds, pos[0], stdout)
	case "tail":
		err = kafkaTail(ctx, seeds, pos[0], *from == "beginning", *limit, stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "weir kafka %s: %v\n", args[0], err)
		return ExitFailure
	}
	return ExitOK
}

func metadata(ctx context.Context, cl *kgo.Client, topics ...string) (*kmsg.MetadataResponse, error) {
	req := kmsg.NewPtrMetadataRequest()
	for _, t := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	return req.RequestWith(ctx, cl)
}

func kafkaTopics(ctx context.Context, seeds []string, stdout io.Writer) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return err
	}
	defer cl.Close()
	md, err := metadata(ctx, cl)
	if err != nil {
		return err
	}
	slices.SortFunc(md.Topics, func(a, b kmsg.MetadataResponseTopic) int { return strings.Compare(deref(a.Topic), deref(b.Topic)) })
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITIONS\tREPLICAS")
	for _, t := range md.Topics {
		if t.IsInternal {
			continue
		}
		repl := 0
		if len(t.Partitions) > 0 {
			repl = len(t.Partitions[0].Replicas)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\n", deref(t.Topic), len(t.Partitions), repl)
	}
	return tw.Flush()
}

// offsets returns each partition's earliest (ts −2) or latest (ts −1)
// offset.
func offsets(ctx context.Context, cl *kgo.Client, topic string, parts []int32, ts int64) (map[int32]int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for _, p := range parts {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp = p, ts
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	out := map[int32]int64{}
	for _, shard := range cl.RequestSharded(ctx, req) {
		if shard.Err != nil {
			return nil, shard.Err
		}
		resp := shard.Resp.(*kmsg.ListOffsetsResponse)
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 {
					return nil, fmt.Errorf("list offsets of %s/%d: error code %d", topic, p.Partition, p.ErrorCode)
				}
				out[p.Partition] = p.Offset
			}
		}
	}
	return out, nil
}

func kafkaDescribe(ctx context.Context, seeds []string, topic string, stdout io.Writer) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return err
	}
	defer cl.Close()
	md, err := metadata(ctx, cl, topic)
	if err != nil {
		return err
	}
	if len(md.Topics) != 1 || md.Topics[0].ErrorCode != 0 {
		return fmt.Errorf("no topic %q", topic)
	}
	t := md.Topics[0]
	var parts []int32
	for _, p := range t.Partitions {
		parts = append(parts, p.Partition)
	}
	slices.Sort(parts)
	start, err := offsets(ctx, cl, topic, parts, -2)
	if err != nil {
		return err
	}
	end, err := offsets(ctx, cl, topic, parts, -1)
	if err != nil {
		return err
	}
	byNum := map[int32]kmsg.MetadataResponseTopicPartition{}
	for _, p := range t.Partitions {
		byNum[p.Partition] = p
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "topic %s: %d partition(s)\n", topic, len(parts))
	fmt.Fprintln(tw, "PARTITION\tLEADER\tREPLICAS\tSTART\tEND\tRECORDS")
	var total int64
	for _, n := range parts {
		p := byNum[n]
		total += end[n] - start[n]
		fmt.Fprintf(tw, "%d\t%d\t%v\t%d\t%d\t%d\n", n, p.Leader, p.Replicas, start[n], end[n], end[n]-start[n])
	}
	fmt.Fprintf(tw, "\t\t\t\t\t%d\n", total)
	return tw.Flush()
}

// tailRecord is one record as weir kafka tail prints it.
type tailRecord struct {
	Topic     string            `json:"topic"`
	Partition int32             `json:"partition"`
	Offset    int64             `json:"offset"`
	Timestamp string            `json:"timestamp"`
	Key       *string           `json:"key,omitempty"`
	Value     json.RawMessage   `json:"value"`
	Headers   map[string]string `json:"headers,omitempty"`
}

func kafkaTail(ctx context.Context, seeds []string, topic string, fromStart bool, limit int, stdout io.Writer) error {
	at := kgo.NewOffset().AtEnd()
	if fromStart {
		at = kgo.NewOffset().AtStart()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(at))
	if err != nil {
		return err
	}
	defer cl.Close()
	enc := json.NewEncoder(stdout)
	n := 0
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		if errs := fs.Errors(); len(errs) > 0 {
			return errs[0].Err
		}
		var werr error
		fs.EachRecord(func(r *kgo.Record) {
			if werr != nil || (limit > 0 && n >= limit) {
				return
			}
			tr := tailRecord{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp.UTC().Format(time.RFC3339Nano)}
			if r.Key != nil {
				k := string(r.Key)
				tr.Key = &k
			}
			if json.Valid(r.Value) {
				tr.Value = r.Value
			} else {
				s := string(r.Value)
				if !utf8.ValidString(s) {
					s = strings.ToValidUTF8(s, "\uFFFD")
				}
				tr.Value, _ = json.Marshal(s)
			}
			if len(r.Headers) > 0 {
				tr.Headers = map[string]string{}
				for _, h := range r.Headers {
					tr.Headers[h.Key] = string(h.Value)
				}
			}
			werr = enc.Encode(tr)
			n++
		})
		if werr != nil {
			return werr
		}
		if limit > 0 && n >= limit {
			return nil
		}
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
