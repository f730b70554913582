package main

// The consumer's state: its rows and the position they reflect, in one JSON
// file replaced atomically, so a kill leaves either the old file or the new
// one, never a position without its rows.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	loyaltyv1 "github.com/jericommerce/loyalty/gen/go/jericommerce/loyalty/v1"
)

const (
	stateFormat = 1
	noCampaign  = "(none)"
)

type row struct {
	issued, redeemed     decimal
	redemptions, refunds int64
}

// customer id -> campaign id ("(none)" when unset) -> month "2006-01" -> row
type rows map[string]map[string]map[string]*row

type state struct {
	position  int64
	types     []string // the filter the state was built with, sorted
	customers rows
}

type rowJSON struct {
	Issued      string `json:"issued"`
	Redeemed    string `json:"redeemed"`
	Redemptions int64  `json:"redemptions"`
	Refunds     int64  `json:"refunds"`
}

type stateJSON struct {
	Format    int                                      `json:"format"`
	Position  string                                   `json:"position"`
	Types     []string                                 `json:"types"`
	Customers map[string]map[string]map[string]rowJSON `json:"customers"`
}

func loadState(path string, types []string) (*state, error) {
	st := &state{types: types, customers: rows{}}
	text, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	var saved stateJSON
	if err := json.Unmarshal(text, &saved); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	if saved.Format != stateFormat {
		return nil, fmt.Errorf("%s: state format %d, expected %d", path, saved.Format, stateFormat)
	}
	// A state built from other types would silently miss events: refuse.
	if strings.Join(saved.Types, ",") != strings.Join(types, ",") {
		built := strings.Join(saved.Types, ",")
		if built == "" {
			built = "(all)"
		}
		return nil, fmt.Errorf("%s was built with -types %s", path, built)
	}
	if st.position, err = strconv.ParseInt(saved.Position, 10, 64); err != nil {
		return nil, fmt.Errorf("%s: position: %v", path, err)
	}
	for id, campaigns := range saved.Customers {
		st.customers[id] = map[string]map[string]*row{}
		for campaign, months := range campaigns {
			st.customers[id][campaign] = map[string]*row{}
			for month, r := range months {
				issued, err1 := parseDecimal(r.Issued)
				redeemed, err2 := parseDecimal(r.Redeemed)
				if err1 != nil || err2 != nil {
					return nil, fmt.Errorf("%s: a bad decimal for %s", path, id)
				}
				st.customers[id][campaign][month] = &row{issued, redeemed, r.Redemptions, r.Refunds}
			}
		}
	}
	return st, nil
}

func (r *row) json() rowJSON {
	return rowJSON{r.issued.String(), r.redeemed.String(), r.redemptions, r.refunds}
}

func (st *state) save(path string) error {
	out := stateJSON{
		Format: stateFormat, Position: strconv.FormatInt(st.position, 10), Types: st.types,
		Customers: map[string]map[string]map[string]rowJSON{},
	}
	if out.Types == nil {
		out.Types = []string{}
	}
	for id, campaigns := range st.customers {
		out.Customers[id] = map[string]map[string]rowJSON{}
		for campaign, months := range campaigns {
			out.Customers[id][campaign] = map[string]rowJSON{}
			for month, r := range months {
				out.Customers[id][campaign][month] = r.json()
			}
		}
	}
	text, err := json.Marshal(out)
	if err != nil {
		return err
	}
	temporary := path + ".tmp"
	f, err := os.Create(temporary)
	if err != nil {
		return err
	}
	if _, err = f.Write(text); err == nil {
		err = f.Sync()
	}
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(temporary, path); err != nil {
		return err
	}
	dir, err := os.Open(filepath.Dir(path)) // makes the rename itself durable
	if err != nil {
		return err
	}
	defer dir.Close()
	return dir.Sync()
}

// row is the row an event adds to, created on first use.
func (st *state) row(e *loyaltyv1.StoredEvent) *row {
	month := "unknown"
	if e.GetCreatedAt() != nil {
		month = e.GetCreatedAt().AsTime().UTC().Format("2006-01")
	}
	campaign := e.GetCampaignId()
	if campaign == "" {
		campaign = noCampaign
	}
	campaigns, ok := st.customers[e.GetCustomerId()]
	if !ok {
		campaigns = map[string]map[string]*row{}
		st.customers[e.GetCustomerId()] = campaigns
	}
	months, ok := campaigns[campaign]
	if !ok {
		months = map[string]*row{}
		campaigns[campaign] = months
	}
	r, ok := months[month]
	if !ok {
		r = &row{issued: zero(), redeemed: zero()}
		months[month] = r
	}
	return r
}

// figures sums the rows over customers: campaign -> month -> totals.
func figures(customers rows) map[string]map[string]rowJSON {
	total := map[string]map[string]*row{}
	for _, campaigns := range customers {
		for campaign, months := range campaigns {
			if total[campaign] == nil {
				total[campaign] = map[string]*row{}
			}
			for month, r := range months {
				sum, ok := total[campaign][month]
				if !ok {
					sum = &row{issued: zero(), redeemed: zero()}
					total[campaign][month] = sum
				}
				sum.issued = sum.issued.plus(r.issued)
				sum.redeemed = sum.redeemed.plus(r.redeemed)
				sum.redemptions += r.redemptions
				sum.refunds += r.refunds
			}
		}
	}
	out := map[string]map[string]rowJSON{}
	for campaign, months := range total {
		out[campaign] = map[string]rowJSON{}
		for month, r := range months {
			out[campaign][month] = r.json()
		}
	}
	return out
}
