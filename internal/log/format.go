package log

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/bits"
	"time"
)

// Format version 1 of a record batch (docs/format/log.md):
//
//	0  magic        uint32  0x77656972 ("weir")
//	4  version      uint8   1
//	5  attributes   uint8   0 (reserved)
//	6  crc          uint32  CRC-32C (Castagnoli) of bytes [10, end of batch)
//	10 base offset  int64
//	18 write offset int64   base offset of the first batch of the same write
//	26 record count uint32
//	30 first ts     int64   Unix milliseconds of the first record
//	38 max ts       int64   largest record timestamp in the batch
//	46 payload len  uint32
//	50 payload      the records
//
// All integers are big-endian.
const (
	formatVersion = 1
	batchMagic    = 0x77656972

	offVersion    = 4
	offAttributes = 5
	offCRC        = 6
	offBase       = 10
	offWrite      = 18
	offCount      = 26
	offFirstTS    = 30
	offMaxTS      = 38
	offPayloadLen = 46
	headerSize    = 50
)

// minRecordBytes is the smallest encoding of one record: offset delta,
// timestamp delta, key length, value length, header count (one byte each).
const minRecordBytes = 5

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// batchMagicBytes is the prefix every batch starts with; recovery looks for
// it to find valid data after a damaged region.
var batchMagicBytes = []byte{0x77, 0x65, 0x69, 0x72, formatVersion, 0}

// errBadBatch is the class of every decoding failure.
var errBadBatch = errors.New("bad record batch")

// batchHeader is the decoded fixed header of a batch.
type batchHeader struct {
	crc        uint32
	base       int64
	write      int64
	count      int64
	firstTS    int64
	maxTS      int64
	payloadLen int64
}

// size is the encoded size of the whole batch.
func (h batchHeader) size() int64 { return headerSize + h.payloadLen }

// next is the offset after the last record of the batch.
func (h batchHeader) next() int64 { return h.base + h.count }

// parseHeader decodes and sanity-checks a batch header. It does not verify
// the CRC: that needs the payload.
func parseHeader(b []byte) (batchHeader, error) {
	if len(b) < headerSize {
		return batchHeader{}, fmt.Errorf("%w: %d bytes, header needs %d", errBadBatch, len(b), headerSize)
	}
	if m := binary.BigEndian.Uint32(b); m != batchMagic {
		return batchHeader{}, fmt.Errorf("%w: magic %#08x", errBadBatch, m)
	}
	if v := b[offVersion]; v != formatVersion {
		return batchHeader{}, fmt.Errorf("%w: version %d, want %d", errBadBatch, v, formatVersion)
	}
	if a := b[offAttributes]; a != 0 {
		return batchHeader{}, fmt.Errorf("%w: attributes %#02x, want 0", errBadBatch, a)
	}
	h := batchHeader{
		crc:        binary.BigEndian.Uint32(b[offCRC:]),
		base:       int64(binary.BigEndian.Uint64(b[offBase:])),
		write:      int64(binary.BigEndian.Uint64(b[offWrite:])),
		count:      int64(binary.BigEndian.Uint32(b[offCount:])),
		firstTS:    int64(binary.BigEndian.Uint64(b[offFirstTS:])),
		maxTS:      int64(binary.BigEndian.Uint64(b[offMaxTS:])),
		payloadLen: int64(binary.BigEndian.Uint32(b[offPayloadLen:])),
	}
	switch {
	case h.base < 0:
		return batchHeader{}, fmt.Errorf("%w: negative base offset %d", errBadBatch, h.base)
	case h.write < 0 || h.write > h.base:
		return batchHeader{}, fmt.Errorf("%w: write offset %d not in [0, base offset %d]", errBadBatch, h.write, h.base)
	case h.count == 0:
		return batchHeader{}, fmt.Errorf("%w: zero records", errBadBatch)
	case h.count*minRecordBytes > h.payloadLen:
		return batchHeader{}, fmt.Errorf("%w: %d records cannot fit in %d bytes", errBadBatch, h.count, h.payloadLen)
	case h.base > math.MaxInt64-h.count:
		return batchHeader{}, fmt.Errorf("%w: offsets overflow", errBadBatch)
	}
	return h, nil
}

// checksum computes the CRC of a complete batch.
func checksum(batch []byte) uint32 {
	return crc32.Checksum(batch[offBase:], castagnoli)
}

// encodeBatch appends an unsealed batch (base offset 0, no CRC) holding
// recs to dst. Records with a zero Timestamp get now (Unix milliseconds).
// It returns the buffer and the batch's max timestamp.
func encodeBatch(dst []byte, recs []Record, now int64) ([]byte, int64) {
	start := len(dst)
	dst = append(dst, make([]byte, headerSize)...)
	ts := func(r *Record) int64 {
		if r.Timestamp.IsZero() {
			return now
		}
		return r.Timestamp.UnixMilli()
	}
	first := ts(&recs[0])
	maxTS := first
	for i := range recs {
		r := &recs[i]
		t := ts(r)
		maxTS = max(maxTS, t)
		dst = binary.AppendUvarint(dst, uint64(i))
		dst = binary.AppendVarint(dst, t-first)
		dst = appendBytes(dst, r.Key)
		dst = appendBytes(dst, r.Value)
		dst = binary.AppendUvarint(dst, uint64(len(r.Headers)))
		for _, h := range r.Headers {
			dst = binary.AppendUvarint(dst, uint64(len(h.Key)))
			dst = append(dst, h.Key...)
			dst = appendBytes(dst, h.Value)
		}
	}
	b := dst[start:]
	binary.BigEndian.PutUint32(b, batchMagic)
	b[offVersion] = formatVersion
	binary.BigEndian.PutUint32(b[offCount:], uint32(len(recs)))
	binary.BigEndian.PutUint64(b[offFirstTS:], uint64(first))
	binary.BigEndian.PutUint64(b[offMaxTS:], uint64(maxTS))
	binary.BigEndian.PutUint32(b[offPayloadLen:], uint32(len(b)-headerSize))
	return dst, maxTS
}

// encodedSizeBound is an upper bound of the encoded size of recs, so that
// encodeBatch allocates once.
func encodedSizeBound(recs []Record) int {
	n := headerSize
	for i := range recs {
		r := &recs[i]
		n += 4*binary.MaxVarintLen64 + len(r.Key) + len(r.Value)
		for _, h := range r.Headers {
			n += 2*binary.MaxVarintLen64 + len(h.Key) + len(h.Value)
		}
	}
	return n
}

// appendBytes writes a varint length (-1 for nil) and the bytes.
func appendBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}

// sealBatch sets the base offset of an encoded batch, the base offset of
// the first batch of the write that carries it, and its CRC.
func sealBatch(batch []byte, base, write int64) {
	binary.BigEndian.PutUint64(batch[offBase:], uint64(base))
	binary.BigEndian.PutUint64(batch[offWrite:], uint64(write))
	binary.BigEndian.PutUint32(batch[offCRC:], checksum(batch))
}

// decodeBatch verifies a complete batch (header, payload, CRC) and appends
// its records to dst. The records' Key, Value and header values alias b.
func decodeBatch(b []byte, dst []Record) ([]Record, batchHeader, error) {
	return decodeBatchCRC(b, dst, true)
}

// decodeBatchCRC is decodeBatch; checkCRC false skips the checksum of a
// batch its caller has just verified (readBatchAt does).
func decodeBatchCRC(b []byte, dst []Record, checkCRC bool) ([]Record, batchHeader, error) {
	h, err := parseHeader(b)
	if err != nil {
		return dst, h, err
	}
	if int64(len(b)) != h.size() {
		return dst, h, fmt.Errorf("%w: %d bytes, header says %d", errBadBatch, len(b), h.size())
	}
	if checkCRC {
		if c := checksum(b); c != h.crc {
			return dst, h, fmt.Errorf("%w: crc %#08x, header says %#08x", errBadBatch, c, h.crc)
		}
	}
	d := decoder{b: b[headerSize:]}
	maxTS := int64(math.MinInt64)
	// The headers of every record share one backing array (records are
	// given slices with capped capacity), one allocation per batch.
	var hdrs []Header
	for i := range h.count {
		delta := d.uvarint()
		if d.err == nil && delta != uint64(i) {
			d.fail(fmt.Sprintf("record %d has offset delta %d", i, delta))
		}
		ts := h.firstTS + d.varint()
		if i == 0 && ts != h.firstTS {
			d.fail("first record's timestamp differs from the header's")
		}
		maxTS = max(maxTS, ts)
		r := Record{Offset: h.base + i, Timestamp: time.UnixMilli(ts)}
		r.Key = d.bytes()
		r.Value = d.bytes()
		if n := d.uvarint(); n > 0 && d.err == nil {
			if n > uint64(len(d.b)/2) {
				d.fail(fmt.Sprintf("record %d claims %d headers", i, n))
				break
			}
			if cap(hdrs)-len(hdrs) < int(n) {
				hdrs = make([]Header, 0, max(int(n)*int(h.count-i), 16))
			}
			start := len(hdrs)
			for range n {
				k := internKey(d.rawBytes(d.uvarint()))
				hdrs = append(hdrs, Header{Key: k, Value: d.bytes()})
			}
			r.Headers = hdrs[start:len(hdrs):len(hdrs)]
		}
		if d.err != nil {
			break
		}
		dst = append(dst, r)
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail(fmt.Sprintf("%d trailing bytes", len(d.b)))
	}
	if d.err == nil && maxTS != h.maxTS {
		d.fail("max timestamp differs from the header's")
	}
	return dst, h, d.err
}

// internKey returns header key k as a string, without allocating for the
// keys weir itself writes.
func internKey(k []byte) string {
	switch string(k) {
	case "tenant":
		return "tenant"
	case "event_id":
		return "event_id"
	case "received_at":
		return "received_at"
	case "client_ip":
		return "client_ip"
	case "ua_browser":
		return "ua_browser"
	case "ua_os":
		return "ua_os"
	case "ua_device":
		return "ua_device"
	case "source":
		return "source"
	}
	return string(k)
}

// decoder reads varint-framed fields; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(msg string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", errBadBatch, msg)
	}
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	if n != uvarintLen(v) {
		d.fail("uvarint not in its shortest form")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	if n != uvarintLen(uint64(v<<1)^uint64(v>>63)) {
		d.fail("varint not in its shortest form")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// uvarintLen is the length of the shortest encoding of v, the only one a
// valid batch uses: one byte sequence per batch keeps decode(encode(x)) and
// encode(decode(b)) exact inverses.
func uvarintLen(v uint64) int {
	return max(1, (bits.Len64(v)+6)/7)
}

// bytes reads a varint length (-1 = nil) and that many bytes.
func (d *decoder) bytes() []byte {
	n := d.varint()
	if d.err != nil || n == -1 {
		return nil
	}
	if n < 0 {
		d.fail(fmt.Sprintf("negative length %d", n))
		return nil
	}
	return d.rawBytes(uint64(n))
}

func (d *decoder) rawBytes(n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail(fmt.Sprintf("length %d exceeds the %d bytes left", n, len(d.b)))
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}
