// Package collector is weir's HTTP event collector: the front end that
// receives events from analytics SDKs (Segment, RudderStack and Snowplow
// style clients, browsers) and makes them durable before answering.
//
// # Requests
//
// POST /v1/events takes one JSON object; POST /v1/batch takes a JSON array
// of objects, a {"batch": [...]} wrapper, or NDJSON (by Content-Type, or
// detected: an object followed by more data). Bodies may be gzip or zstd
// compressed; text/plain bodies (navigator.sendBeacon) are read as JSON.
// A write key (Authorization: Bearer, or Basic with the key as user name)
// names the tenant. docs/collector.md lists every status code.
//
// # Invariants
//
//   - A 200 means every accepted event of the request is durable: the
//     answer is written only after one Appender.Append call holding all of
//     them returned nil. Any other status means nothing of the request was
//     acknowledged (the client retries it whole).
//   - An accepted event's record Value is its JSON text exactly as received
//     (after decompression): a JSON object, UTF-8, nested at most
//     limits.max_depth deep, with no key twice in any object. Invalid events
//     of a batch are rejected one by one with a reason; the rest are
//     accepted.
//   - Everything is bounded: body bytes as sent and after decompression
//     (enforced while decompressing, so a compression bomb allocates no more
//     than the limit), events per request, requests in flight (a semaphore:
//     a request that finds it full is answered 503 at once, never queued),
//     and events per second per tenant (429).
//   - Per event the hot path does not allocate: bodies, records, headers
//     and response buffers are pooled, and record values and most header
//     values alias the body.
//
// # Threading
//
// The handler is safe for concurrent use; each request runs in its
// net/http goroutine, and Append is called from it. Serve owns the
// http.Server and its goroutines and returns once they are done. The
// Overloaded option and the Appender are called concurrently.
package collector
