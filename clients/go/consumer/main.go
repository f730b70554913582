// Command loyalty-consumer is a replay consumer: it builds a projection of its
// own from the service's typed events, the way an internal Go service would,
// with the client generated from proto/ by `make clients`.
//
// The projection: per customer, campaign and month (of the event's
// created_at, UTC), the points issued (positive `Balance changed` amounts),
// the points redeemed (negative amounts, as a positive figure), the rewards
// redeemed and refunded. Decimals stay exact (math/big), never float64.
//
// It keeps its position and its state together in one JSON file, replaced
// atomically (write a temporary file, fsync, rename, fsync the directory), so
// after a kill it resumes exactly where the saved state ends: no event is
// applied twice or missed. It honours customer_erased (deletes that
// customer's rows and saves at once), skips redacted events and events of
// types it does not know, and saves the checkpoint positions a filtered
// stream sends, so a restart does not rescan what it already scanned.
//
//	loyalty-consumer -state points.json [-target HOST:PORT]
//	    [-types REWARD_REDEEMED,...] [-follow] [-save-every N]
//	    [-ca FILE [-cert FILE -key FILE] [-server-name NAME]]
//
// With -ca the channel uses TLS, and with -cert and -key it also presents a
// client certificate (mTLS).
//
// Prints one JSON object a line: `resumed` (the position it starts after),
// `saved` (each save), `caught_up` (with -follow), then `done` with this
// run's counts and the figures summed over customers. Without -follow it ends
// when the replay reaches the head; with -follow it runs until SIGINT or
// SIGTERM, then saves and exits 0.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	loyaltyv1 "github.com/jericommerce/loyalty/gen/go/jericommerce/loyalty/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

type options struct {
	target, statePath               string
	caFile, certFile, keyFile, name string
	types                           []loyaltyv1.EventType
	follow                          bool
	saveEvery                       int
}

func usage(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "consumer: "+format+"\n", args...)
	fmt.Fprintln(os.Stderr, "usage: loyalty-consumer -state FILE [-target HOST:PORT] [-types NAME,...] [-follow] [-save-every N]\n"+
		"       [-ca FILE [-cert FILE -key FILE] [-server-name NAME]]")
	os.Exit(2)
}

func parseFlags() options {
	var o options
	var types string
	flag.StringVar(&o.target, "target", "127.0.0.1:50051", "host:port of the gRPC API")
	flag.StringVar(&o.statePath, "state", "", "the state file (required)")
	flag.StringVar(&types, "types", "", "only these event types, comma-separated (e.g. REWARD_REDEEMED)")
	flag.BoolVar(&o.follow, "follow", false, "keep following new events until SIGINT/SIGTERM")
	flag.IntVar(&o.saveEvery, "save-every", 1000, "save after this many events")
	flag.StringVar(&o.caFile, "ca", "", "PEM CA bundle: connect with TLS, trusting it")
	flag.StringVar(&o.certFile, "cert", "", "PEM client certificate (mTLS, with -key)")
	flag.StringVar(&o.keyFile, "key", "", "PEM private key of -cert")
	flag.StringVar(&o.name, "server-name", "", "name to verify in the server certificate")
	flag.Usage = func() { usage("bad flags") }
	flag.Parse()
	if o.statePath == "" || flag.NArg() > 0 {
		usage("-state is required, and nothing else")
	}
	if o.saveEvery < 1 {
		usage("-save-every must be a positive integer")
	}
	if (o.certFile == "") != (o.keyFile == "") || (o.certFile != "" && o.caFile == "") {
		usage("-cert and -key go together, with -ca")
	}
	for _, name := range strings.Split(types, ",") {
		if name == "" {
			continue
		}
		full := name
		if !strings.HasPrefix(full, "EVENT_TYPE_") {
			full = "EVENT_TYPE_" + name
		}
		value, ok := loyaltyv1.EventType_value[full]
		if !ok || value == 0 {
			usage("unknown event type %s", name)
		}
		o.types = append(o.types, loyaltyv1.EventType(value))
	}
	return o
}

func emit(line map[string]interface{}) {
	out, _ := json.Marshal(line)
	os.Stdout.Write(append(out, '\n'))
}

func main() {
	o := parseFlags()
	names := make([]string, 0, len(o.types))
	for _, t := range o.types {
		names = append(names, t.String())
	}
	sort.Strings(names)
	st, err := loadState(o.statePath, names)
	if err != nil {
		usage("%v", err)
	}
	emit(map[string]interface{}{"step": "resumed", "after": fmt.Sprint(st.position)})

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	security, err := transport(o)
	if err != nil {
		fail(err)
	}
	conn, err := grpc.Dial(o.target, security)
	if err != nil {
		fail(err)
	}
	defer conn.Close()
	c := &consumer{o: o, st: st, events: loyaltyv1.NewEventServiceClient(conn), savedAt: time.Now()}
	if err := c.run(ctx); err != nil {
		fail(err)
	}
	c.save()
	emit(map[string]interface{}{
		"step": "done", "position": fmt.Sprint(st.position), "received": c.counts,
		"figures": figures(st.customers),
	})
}

// transport is TLS with -ca (mTLS with -cert and -key), else plaintext.
func transport(o options) (grpc.DialOption, error) {
	if o.caFile == "" {
		return grpc.WithInsecure(), nil // grpc-go 1.33 predates insecure.NewCredentials()
	}
	pem, err := os.ReadFile(o.caFile)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", o.caFile)
	}
	config := &tls.Config{RootCAs: roots, ServerName: o.name, MinVersion: tls.VersionTLS12}
	if o.certFile != "" {
		pair, err := tls.LoadX509KeyPair(o.certFile, o.keyFile)
		if err != nil {
			return nil, err
		}
		config.Certificates = []tls.Certificate{pair}
	}
	return grpc.WithTransportCredentials(credentials.NewTLS(config)), nil
}

func fail(err error) {
	s := status.Convert(err)
	emit(map[string]interface{}{"step": "error", "code": int(s.Code()), "message": s.Message()})
	os.Exit(1)
}

type consumer struct {
	o       options
	st      *state
	events  loyaltyv1.EventServiceClient
	counts  counts
	unsaved int
	savedAt time.Time
}

type counts struct {
	Events      int `json:"events"`
	Checkpoints int `json:"checkpoints"`
	Erasures    int `json:"erasures"`
	Redacted    int `json:"redacted"`
	Unknown     int `json:"unknown"`
	Invalid     int `json:"invalid"`
}

func (c *consumer) save() {
	if err := c.st.save(c.o.statePath); err != nil {
		fail(err)
	}
	emit(map[string]interface{}{"step": "saved", "position": fmt.Sprint(c.st.position)})
	c.unsaved = 0
	c.savedAt = time.Now()
}

// overdue: something applied and not saved for a second.
func (c *consumer) overdue() bool {
	return c.unsaved > 0 && time.Since(c.savedAt) >= time.Second
}

func (c *consumer) advance(position int64) {
	if position > c.st.position {
		c.st.position = position
	}
}

// run streams until the head (or, with -follow, until ctx ends). No deadline
// on the stream: a replay of millions of events takes minutes, and a follow
// stream is meant to stay open. A broken connection is resumed after the
// saved position, with back-off.
func (c *consumer) run(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	for {
		err := c.stream(ctx, &backoff)
		if err == nil || ctx.Err() != nil {
			return nil // the end of the replay, or SIGINT/SIGTERM
		}
		if status.Code(err) != codes.Unavailable {
			return err
		}
		c.save()
		emit(map[string]interface{}{"step": "retrying", "code": int(codes.Unavailable), "message": status.Convert(err).Message()})
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil
		}
		if backoff *= 2; backoff > 5*time.Second {
			backoff = 5 * time.Second
		}
	}
}

// received is one answer of the stream: an item, or the error that ended it.
type received struct {
	resp *loyaltyv1.StreamEventsResponse
	err  error
}

// saveTick is how often a follower looks for events left unsaved: a lone
// live event is saved within about a second, not at the next item, which may
// not come for hours.
const saveTick = 200 * time.Millisecond

func (c *consumer) stream(ctx context.Context, backoff *time.Duration) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the call when we stop reading
	stream, err := c.events.StreamEvents(ctx, &loyaltyv1.StreamEventsRequest{
		AfterPosition: c.st.position, EventTypes: c.o.types, Follow: c.o.follow,
	})
	if err != nil {
		return err
	}
	// Recv blocks, so it runs in a goroutine of its own; the state is only
	// touched here, between items and on the ticker, never by two at once.
	answers := make(chan received)
	go func() {
		for {
			resp, err := stream.Recv()
			select {
			case answers <- received{resp, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	tick := time.NewTicker(saveTick)
	defer tick.Stop()
	for {
		var got received
		select {
		case <-ctx.Done():
			return ctx.Err() // SIGINT/SIGTERM: the caller saves
		case <-tick.C:
			if c.overdue() {
				c.save()
			}
			continue
		case got = <-answers:
		}
		resp, err := got.resp, got.err
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		*backoff = 100 * time.Millisecond
		switch item := resp.GetItem().(type) {
		case *loyaltyv1.StreamEventsResponse_Event:
			c.apply(item.Event)
			c.advance(item.Event.GetPosition())
			c.unsaved++
		case *loyaltyv1.StreamEventsResponse_CustomerErased:
			c.counts.Erasures++
			delete(c.st.customers, item.CustomerErased.GetCustomerId())
			c.advance(item.CustomerErased.GetPosition())
			c.save() // their rows leave the disk now, not at the next save
		case *loyaltyv1.StreamEventsResponse_Checkpoint:
			c.counts.Checkpoints++
			c.advance(item.Checkpoint.GetPosition())
			c.save() // the point of a checkpoint: a restart starts after it
		case *loyaltyv1.StreamEventsResponse_CaughtUp:
			c.advance(item.CaughtUp.GetHeadPosition())
			c.save()
			emit(map[string]interface{}{"step": "caught_up", "head_position": fmt.Sprint(item.CaughtUp.GetHeadPosition())})
		default:
			// an item kind added later, ignored as the proto asks
		}
		if c.unsaved >= c.o.saveEvery || c.overdue() {
			c.save()
		}
	}
}

func (c *consumer) apply(e *loyaltyv1.StoredEvent) {
	c.counts.Events++
	// An erased customer's event keeps its position but no body.
	if e.GetRedacted() {
		c.counts.Redacted++
		return
	}
	switch p := e.GetPayload().(type) {
	case *loyaltyv1.StoredEvent_BalanceChanged:
		amount, err := parseDecimal(p.BalanceChanged.GetAmount().GetValue())
		if err != nil {
			c.counts.Invalid++
			return
		}
		r := c.st.row(e)
		if amount.sign() > 0 {
			r.issued = r.issued.plus(amount)
		} else if amount.sign() < 0 {
			r.redeemed = r.redeemed.plus(amount.negated())
		}
	case *loyaltyv1.StoredEvent_RewardRedeemed:
		c.st.row(e).redemptions++
	case *loyaltyv1.StoredEvent_RewardRefunded:
		c.st.row(e).refunds++
	case nil:
		// No payload: a type this build does not know (or the service does
		// not), or properties the service could not read (payload_error).
		if e.GetPayloadError() != "" {
			c.counts.Invalid++
		} else {
			c.counts.Unknown++
		}
	default:
		// a known type this projection does not use
	}
}
