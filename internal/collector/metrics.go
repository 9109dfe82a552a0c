package collector

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// statusCodes are the statuses the collector answers with; each has its
// own requests counter, created up front.
var statusCodes = []int{
	http.StatusOK, http.StatusNoContent,
	http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound,
	http.StatusMethodNotAllowed, http.StatusRequestTimeout, http.StatusRequestEntityTooLarge,
	http.StatusUnsupportedMediaType, http.StatusTooManyRequests,
	http.StatusInternalServerError, http.StatusServiceUnavailable,
}

// metrics are the collector's Prometheus metrics. Label values are bounded:
// status codes from statusCodes, tenants from the configuration, reasons
// from reasonLabel.
type metrics struct {
	requests       map[int]prometheus.Counter // by status code; read-only after newMetrics
	requestsOther  prometheus.Counter
	requestSeconds prometheus.Histogram
	appendSeconds  prometheus.Histogram
	receivedBytes  prometheus.Counter
	decodedBytes   prometheus.Counter
	inFlight       prometheus.Gauge
	accepted       *prometheus.CounterVec
	rejected       *prometheus.CounterVec
}

// tenantMetrics are one tenant's counters, resolved once.
type tenantMetrics struct {
	accepted prometheus.Counter
	rejected [numProblems]prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "weir_collector_requests_total",
		Help: "HTTP requests answered by the event collector, by status code.",
	}, []string{"code"})
	m := &metrics{
		requests:      map[int]prometheus.Counter{},
		requestsOther: reqs.WithLabelValues("other"),
		requestSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "weir_collector_request_duration_seconds",
			Help:    "Time from the request headers to the answer, including the append.",
			Buckets: prometheus.ExponentialBuckets(1e-4, 2.5, 14),
		}),
		appendSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "weir_collector_append_duration_seconds",
			Help:    "Time one request's events take to become durable (the Append call).",
			Buckets: prometheus.ExponentialBuckets(1e-5, 2.5, 16),
		}),
		receivedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "weir_collector_received_bytes_total",
			Help: "Request body bytes received, as sent (compressed, if they were).",
		}),
		decodedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "weir_collector_decoded_bytes_total",
			Help: "Request body bytes after decompression.",
		}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "weir_collector_in_flight_requests",
			Help: "Requests being read, validated or appended now (bounded by limits.max_in_flight).",
		}),
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_collector_events_accepted_total",
			Help: "Events made durable and acknowledged, by tenant.",
		}, []string{"tenant"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_collector_events_rejected_total",
			Help: "Invalid events rejected one by one, by tenant and reason.",
		}, []string{"tenant", "reason"}),
	}
	for _, c := range statusCodes {
		m.requests[c] = reqs.WithLabelValues(strconv.Itoa(c))
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{reqs, m.requestSeconds, m.appendSeconds, m.receivedBytes, m.decodedBytes, m.inFlight, m.accepted, m.rejected} {
			if err := reg.Register(c); err != nil {
				return nil, errors.Join(errors.New("collector: register metrics (is another collector registered on the same registry?)"), err)
			}
		}
	}
	return m, nil
}

func (m *metrics) forTenant(name string) tenantMetrics {
	t := tenantMetrics{accepted: m.accepted.WithLabelValues(name)}
	for p := probNone + 1; p < numProblems; p++ {
		t.rejected[p] = m.rejected.WithLabelValues(name, reasonLabel[p])
	}
	return t
}

func (m *metrics) request(code int) {
	if c, ok := m.requests[code]; ok {
		c.Inc()
		return
	}
	m.requestsOther.Inc()
}
