package nexmark

// Kind says which entity an Event holds.
type Kind uint8

// The kinds of events, and their share of the stream.
const (
	KindPerson  Kind = iota + 1 // 1 in 50
	KindAuction                 // 3 in 50
	KindBid                     // 46 in 50
)

var kindNames = [...]string{KindPerson: "person", KindAuction: "auction", KindBid: "bid"}

// String returns the kind as in the JSON "kind" field.
func (k Kind) String() string {
	if k < KindPerson || k > KindBid {
		return "invalid"
	}
	return kindNames[k]
}

// Person is a new user of the auction site. Times are Unix milliseconds.
type Person struct {
	ID           int64  `json:"id"`
	Name         string `json:"name"`
	EmailAddress string `json:"email_address"`
	CreditCard   string `json:"credit_card"`
	City         string `json:"city"`
	State        string `json:"state"`
	DateTime     int64  `json:"date_time"`
	Extra        string `json:"extra"`
}

// Auction is an item put up for sale by Seller, open from DateTime until
// Expires (Unix milliseconds).
type Auction struct {
	ID          int64  `json:"id"`
	ItemName    string `json:"item_name"`
	Description string `json:"description"`
	InitialBid  int64  `json:"initial_bid"`
	Reserve     int64  `json:"reserve"`
	DateTime    int64  `json:"date_time"`
	Expires     int64  `json:"expires"`
	Seller      int64  `json:"seller"`
	Category    int64  `json:"category"`
	Extra       string `json:"extra"`
}

// Bid is an offer of Price by Bidder on Auction, at DateTime (Unix
// milliseconds).
type Bid struct {
	Auction  int64  `json:"auction"`
	Bidder   int64  `json:"bidder"`
	Price    int64  `json:"price"`
	Channel  string `json:"channel"`
	URL      string `json:"url"`
	DateTime int64  `json:"date_time"`
	Extra    string `json:"extra"`
}

// Event is one event of the stream: the field named by Kind is set, the
// other two are zero.
type Event struct {
	Kind    Kind
	Person  Person
	Auction Auction
	Bid     Bid
}

// DateTime returns the event time of e in Unix milliseconds.
func (e *Event) DateTime() int64 {
	switch e.Kind {
	case KindPerson:
		return e.Person.DateTime
	case KindAuction:
		return e.Auction.DateTime
	default:
		return e.Bid.DateTime
	}
}
