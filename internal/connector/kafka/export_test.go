package kafka

// Crash drops the output as a crash would: its clients are closed without
// a flush and without ending any transaction.
func (o *Output) Crash() {
	o.txMu.Lock()
	defer o.txMu.Unlock()
	for _, cl := range o.txn.clients {
		if cl != nil {
			cl.Close()
		}
	}
}
