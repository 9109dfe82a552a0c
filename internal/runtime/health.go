package runtime

import "strings"

// HealthReporter is implemented by inputs and outputs that can tell when
// they still work but are in trouble: a log near its size limit, a broker
// that keeps failing. The control plane's /healthz reports them as
// degraded components; Health is called from its goroutines.
type HealthReporter interface {
	// Health reports whether the component is degraded, and why.
	Health() (degraded bool, detail string)
}

// NodeHealth is what the instances of one node that implement
// HealthReporter say.
type NodeHealth struct {
	Node     string
	Degraded bool
	Detail   string // the degraded instances' details, joined by "; "
}

// Health asks every input and output instance that implements
// HealthReporter, per node, in graph order.
func (p *Pipeline) Health() []NodeHealth {
	var out []NodeHealth
	idx := map[string]int{}
	for _, inst := range p.insts {
		var comp any
		switch {
		case inst.input != nil:
			comp = inst.input
		case inst.output != nil:
			comp = inst.output
		default:
			continue
		}
		hr, ok := comp.(HealthReporter)
		if !ok {
			continue
		}
		name := inst.stage.Head().Name
		i, seen := idx[name]
		if !seen {
			i = len(out)
			idx[name] = i
			out = append(out, NodeHealth{Node: name})
		}
		if bad, detail := hr.Health(); bad {
			nh := &out[i]
			nh.Degraded = true
			if detail != "" && !strings.Contains(nh.Detail, detail) {
				if nh.Detail != "" {
					nh.Detail += "; "
				}
				nh.Detail += detail
			}
		}
	}
	return out
}
