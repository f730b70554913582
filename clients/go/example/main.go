// Command loyalty-example reads the loyalty service over gRPC the way an
// internal Go service would, with the client generated from proto/ by
// `make clients`. It prints one JSON object a line, one a step:
//
//	customer          GetCustomer with min_position (read-your-writes)
//	not_found         the NOT_FOUND status of an unknown id, with its ErrorInfo
//	invalid_argument  the INVALID_ARGUMENT status of an empty id, with its ErrorInfo
//	customers         ListCustomers paged to the end
//	event             each stored event, StreamEvents with follow
//	caught_up         the caught-up marker of the follow stream
//	live              with -live: the first event stored after caught_up
//	done
//
// A call that fails prints {"step":"error",...} and exits 1. Every call has a
// deadline (-deadline-ms). With -ca the channel uses TLS, and with -cert and
// -key it also presents a client certificate (mTLS).
//
//	loyalty-example -target 127.0.0.1:50051 -customer cus-1 -min-position 42
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
	"io/ioutil"
	"os"
	"strconv"
	"time"

	loyaltyv1 "github.com/jericommerce/loyalty/gen/go/jericommerce/loyalty/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

// Retries for the idempotent reads only, on UNAVAILABLE (the service answers
// it when its store is briefly unreachable). StreamEvents is left out: a
// follow stream is resumed by the caller from the last position it saw.
// grpc-go before 1.40 applies it only when GRPC_GO_RETRY=on is set.
const serviceConfig = `{
  "methodConfig": [{
    "name": [
      {"service": "jericommerce.loyalty.v1.CustomerService"},
      {"service": "jericommerce.loyalty.v1.EventService", "method": "GetHeadPosition"}
    ],
    "retryPolicy": {
      "maxAttempts": 4,
      "initialBackoff": "0.1s",
      "maxBackoff": "1s",
      "backoffMultiplier": 2,
      "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }]
}`

type options struct {
	target, customer, unknown       string
	minPosition, afterPosition      int64
	pageSize                        int
	deadline                        time.Duration
	live                            bool
	caFile, certFile, keyFile, name string
}

func parseFlags() options {
	var o options
	var deadlineMs int
	flag.StringVar(&o.target, "target", "127.0.0.1:50051", "host:port of the gRPC API")
	flag.StringVar(&o.customer, "customer", "", "customer id to read (required)")
	flag.StringVar(&o.unknown, "unknown", "no-such-customer", "an id no customer has")
	flag.Int64Var(&o.minPosition, "min-position", 0, "webhook position to read after (0: do not wait)")
	flag.Int64Var(&o.afterPosition, "after", 0, "stream events after this position")
	flag.IntVar(&o.pageSize, "page-size", 2, "ListCustomers page size")
	flag.IntVar(&deadlineMs, "deadline-ms", 10000, "deadline of each call, and of the follow stream")
	flag.BoolVar(&o.live, "live", false, "after caught_up, wait for one live event")
	flag.StringVar(&o.caFile, "ca", "", "PEM CA bundle: connect with TLS, trusting it")
	flag.StringVar(&o.certFile, "cert", "", "PEM client certificate (mTLS, with -key)")
	flag.StringVar(&o.keyFile, "key", "", "PEM private key of -cert")
	flag.StringVar(&o.name, "server-name", "", "name to verify in the server certificate")
	flag.Parse()
	o.deadline = time.Duration(deadlineMs) * time.Millisecond
	if o.customer == "" || (o.certFile == "") != (o.keyFile == "") || (o.certFile != "" && o.caFile == "") {
		fmt.Fprintln(os.Stderr, "loyalty-example: -customer is required; -cert and -key go together, with -ca")
		flag.Usage()
		os.Exit(2)
	}
	return o
}

func transport(o options) (grpc.DialOption, error) {
	if o.caFile == "" {
		return grpc.WithInsecure(), nil
	}
	pem, err := ioutil.ReadFile(o.caFile)
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

func emit(v map[string]interface{}) {
	line, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(line))
}

func i64(n int64) string { return strconv.FormatInt(n, 10) }

// describeStatus reads the code, message and ErrorInfo detail of a failed call.
func describeStatus(err error) map[string]interface{} {
	st := status.Convert(err)
	out := map[string]interface{}{"code": int(st.Code()), "message": st.Message()}
	for _, detail := range st.Details() {
		if info, ok := detail.(*errdetails.ErrorInfo); ok {
			out["reason"] = info.GetReason()
			out["domain"] = info.GetDomain()
			metadata := info.GetMetadata()
			if metadata == nil {
				metadata = map[string]string{} // {} in JSON, as the other examples print
			}
			out["metadata"] = metadata
		}
	}
	return out
}

func fail(during string, err error) {
	out := describeStatus(err)
	out["step"] = "error"
	out["during"] = during
	emit(out)
	os.Exit(1)
}

func eventJSON(e *loyaltyv1.StoredEvent) map[string]interface{} {
	out := map[string]interface{}{
		"position":    i64(e.GetPosition()),
		"id":          e.GetId(),
		"type":        e.GetType().String(),
		"type_name":   e.GetTypeName(),
		"customer_id": e.GetCustomerId(),
	}
	// A typed payload's exact decimal, as sent (a string, never a float64).
	if changed := e.GetBalanceChanged(); changed != nil {
		out["amount"] = changed.GetAmount().GetValue()
	}
	return out
}

func main() {
	o := parseFlags()
	creds, err := transport(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loyalty-example:", err)
		os.Exit(2)
	}
	conn, err := grpc.Dial(o.target, creds, grpc.WithDefaultServiceConfig(serviceConfig))
	if err != nil {
		fail("dial", err)
	}
	defer conn.Close()
	customers := loyaltyv1.NewCustomerServiceClient(conn)
	events := loyaltyv1.NewEventServiceClient(conn)
	call := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), o.deadline)
	}

	// Read-your-writes: min_position is the position the webhook answered.
	ctx, cancel := call()
	c, err := customers.GetCustomer(ctx, &loyaltyv1.GetCustomerRequest{
		CustomerId: o.customer, MinPosition: o.minPosition,
	})
	cancel()
	if err != nil {
		fail("GetCustomer", err)
	}
	coupons := []string{}
	for _, coupon := range c.GetCoupons() {
		coupons = append(coupons, coupon.GetCode())
	}
	emit(map[string]interface{}{"step": "customer", "customer": map[string]interface{}{
		"customer_id":            c.GetCustomerId(),
		"email":                  c.GetEmail(),
		"first_name":             c.GetFirstName(),
		"points_balance":         i64(c.GetPointsBalance()),
		"points_balance_decimal": c.GetPointsBalanceDecimal(),
		"tier":                   c.GetTier().GetCurrent(),
		"coupon_codes":           coupons,
		"event_count":            i64(c.GetEventCount()),
		"position":               i64(c.GetPosition()),
	}})

	// Expected failures: branch on the code, and on ErrorInfo.reason.
	for _, probe := range []struct{ step, id string }{
		{"not_found", o.unknown}, {"invalid_argument", ""},
	} {
		ctx, cancel = call()
		_, err = customers.GetCustomer(ctx, &loyaltyv1.GetCustomerRequest{CustomerId: probe.id})
		cancel()
		if err == nil {
			fail(probe.step, errors.New("the call succeeded"))
		}
		out := describeStatus(err)
		out["step"] = probe.step
		emit(out)
	}

	// Paging: only an empty next_page_token ends the listing.
	ids, sizes := []string{}, []int{}
	for token := ""; ; {
		ctx, cancel = call()
		page, err := customers.ListCustomers(ctx, &loyaltyv1.ListCustomersRequest{
			PageSize: int32(o.pageSize), PageToken: token, MinPosition: o.minPosition,
		})
		cancel()
		if err != nil {
			fail("ListCustomers", err)
		}
		for _, x := range page.GetCustomers() {
			ids = append(ids, x.GetCustomerId())
		}
		sizes = append(sizes, len(page.GetCustomers()))
		if token = page.GetNextPageToken(); token == "" {
			break
		}
	}
	emit(map[string]interface{}{"step": "customers", "customer_ids": ids, "page_sizes": sizes})

	// The follow stream: stored events, the caught_up marker, then live ones.
	ctx, cancel = call()
	defer cancel()
	stream, err := events.StreamEvents(ctx, &loyaltyv1.StreamEventsRequest{
		AfterPosition: o.afterPosition, Follow: true,
	})
	if err != nil {
		fail("StreamEvents", err)
	}
	live := false
	for {
		item, err := stream.Recv()
		if err == io.EOF {
			fail("StreamEvents", errors.New("the follow stream ended"))
		}
		if err != nil {
			fail("StreamEvents", err)
		}
		switch {
		case item.GetEvent() != nil && live:
			emit(map[string]interface{}{"step": "live", "event": eventJSON(item.GetEvent())})
		case item.GetEvent() != nil:
			emit(map[string]interface{}{"step": "event", "event": eventJSON(item.GetEvent())})
		case item.GetCaughtUp() != nil:
			emit(map[string]interface{}{
				"step": "caught_up", "head_position": i64(item.GetCaughtUp().GetHeadPosition()),
			})
			live = true
		default:
			continue // an item kind added later: ignored, as the proto asks
		}
		if live && (!o.live || item.GetEvent() != nil) {
			break
		}
	}
	cancel() // ends the follow stream
	emit(map[string]interface{}{"step": "done"})
}
