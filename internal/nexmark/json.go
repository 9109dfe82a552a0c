package nexmark

import (
	"math/bits"
	"slices"
	"strconv"
	"unicode/utf8"
)

// AppendJSON appends e as one compact JSON object: "kind" first, then the
// fields of e's entity in declaration order, and returns the extended
// slice. For generated events it writes exactly what Generator.AppendEvent
// does. Strings are escaped as JSON requires; invalid UTF-8 becomes U+FFFD.
// An Event with an invalid Kind is written as a bid.
func AppendJSON(dst []byte, e *Event) []byte {
	switch e.Kind {
	case KindPerson:
		p := &e.Person
		dst = append(dst, `{"kind":"person","id":`...)
		dst = strconv.AppendInt(dst, p.ID, 10)
		dst = appendField(dst, `,"name":`, p.Name)
		dst = appendField(dst, `,"email_address":`, p.EmailAddress)
		dst = appendField(dst, `,"credit_card":`, p.CreditCard)
		dst = appendField(dst, `,"city":`, p.City)
		dst = appendField(dst, `,"state":`, p.State)
		dst = append(dst, `,"date_time":`...)
		dst = strconv.AppendInt(dst, p.DateTime, 10)
		dst = appendField(dst, `,"extra":`, p.Extra)
	case KindAuction:
		a := &e.Auction
		dst = append(dst, `{"kind":"auction","id":`...)
		dst = strconv.AppendInt(dst, a.ID, 10)
		dst = appendField(dst, `,"item_name":`, a.ItemName)
		dst = appendField(dst, `,"description":`, a.Description)
		dst = append(dst, `,"initial_bid":`...)
		dst = strconv.AppendInt(dst, a.InitialBid, 10)
		dst = append(dst, `,"reserve":`...)
		dst = strconv.AppendInt(dst, a.Reserve, 10)
		dst = append(dst, `,"date_time":`...)
		dst = strconv.AppendInt(dst, a.DateTime, 10)
		dst = append(dst, `,"expires":`...)
		dst = strconv.AppendInt(dst, a.Expires, 10)
		dst = append(dst, `,"seller":`...)
		dst = strconv.AppendInt(dst, a.Seller, 10)
		dst = append(dst, `,"category":`...)
		dst = strconv.AppendInt(dst, a.Category, 10)
		dst = appendField(dst, `,"extra":`, a.Extra)
	default:
		b := &e.Bid
		dst = append(dst, `{"kind":"bid","auction":`...)
		dst = strconv.AppendInt(dst, b.Auction, 10)
		dst = append(dst, `,"bidder":`...)
		dst = strconv.AppendInt(dst, b.Bidder, 10)
		dst = append(dst, `,"price":`...)
		dst = strconv.AppendInt(dst, b.Price, 10)
		dst = appendField(dst, `,"channel":`, b.Channel)
		dst = appendField(dst, `,"url":`, b.URL)
		dst = append(dst, `,"date_time":`...)
		dst = strconv.AppendInt(dst, b.DateTime, 10)
		dst = appendField(dst, `,"extra":`, b.Extra)
	}
	return append(dst, '}')
}

// appendField appends key (with its leading comma and colon) and s as a
// JSON string.
func appendField(dst []byte, key, s string) []byte {
	dst = append(dst, key...)
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
			i++
		case c < 0x20:
			dst = appendControl(dst, c)
			i++
		default:
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				dst = append(dst, `\ufffd`...)
			} else {
				dst = append(dst, s[i:i+n]...)
			}
			i += n
		}
	}
	return append(dst, '"')
}

func appendControl(dst []byte, c byte) []byte {
	switch c {
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	}
	const hex = "0123456789abcdef"
	return append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
}

// digitPairs holds "00" to "99".
const digitPairs = "00010203040506070809101112131415161718192021222324252627282930313233343536373839" +
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879" +
	"8081828384858687888990919293949596979899"

// pow10[i] is 10^i.
var pow10 = [...]uint64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19}

// appendInt is strconv.AppendInt(dst, v, 10), writing in place: for the
// numbers of every event it is a large share of the generator's time.
func appendInt(dst []byte, v int64) []byte {
	if v < 0 {
		return strconv.AppendInt(dst, v, 10)
	}
	u := uint64(v)
	// The number of digits: log10 from the bit length, then one correction.
	n := bits.Len64(u) * 1233 >> 12
	if u >= pow10[n] {
		n++
	}
	n = max(n, 1)
	start := len(dst)
	dst = slices.Grow(dst, n)[:start+n]
	i := start + n
	for u >= 100 {
		q := u / 100
		j := (u - q*100) * 2
		i -= 2
		dst[i], dst[i+1] = digitPairs[j], digitPairs[j+1]
		u = q
	}
	if u >= 10 {
		dst[i-2], dst[i-1] = digitPairs[u*2], digitPairs[u*2+1]
	} else {
		dst[i-1] = byte('0' + u)
	}
	return dst
}
