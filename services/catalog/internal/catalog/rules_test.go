package catalog_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/scaleshop/scaleshop/infra/problem"
	"github.com/scaleshop/scaleshop/services/catalog/internal/catalog"
)

func TestLSNRoundTrip(t *testing.T) {
	for _, s := range []string{"0/0", "0/16B3748", "16/B374D848", "FFFFFFFF/FFFFFFFF"} {
		l, err := catalog.ParseLSN(s)
		if err != nil || l.String() != s {
			t.Errorf("ParseLSN(%q) = %v (%v), prints %q", s, l, err, l.String())
		}
	}
	for _, s := range []string{"", "/", "1/", "x/1", "1/2/3", "100000000/0", "-1/0"} {
		if _, err := catalog.ParseLSN(s); err == nil {
			t.Errorf("ParseLSN(%q) accepted", s)
		}
	}
	a, _ := catalog.ParseLSN("1/0")
	b, _ := catalog.ParseLSN("0/FFFFFFFF")
	if a <= b {
		t.Error("LSNs do not order as WAL positions")
	}
}

func TestCursorRoundTrip(t *testing.T) {
	for _, id := range []int64{0, 1, 10000, 1 << 62} {
		got, err := catalog.DecodeCursor(catalog.EncodeCursor(id))
		if err != nil || got != id {
			t.Errorf("cursor of %d decodes to %d, %v", id, got, err)
		}
	}
}

func TestReservationItemsAreMergedAndSorted(t *testing.T) {
	r := catalog.ReservationRequest{OrderID: "o", Items: []catalog.ReservationItem{
		{ProductID: 9, Quantity: 1}, {ProductID: 3, Quantity: 2}, {ProductID: 9, Quantity: 4}}}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	want := []catalog.ReservationItem{{ProductID: 3, Quantity: 2}, {ProductID: 9, Quantity: 5}}
	if !reflect.DeepEqual(r.Items, want) {
		t.Errorf("items = %v, want %v", r.Items, want)
	}
}

func TestInputValidationNamesEveryBadField(t *testing.T) {
	in := catalog.Input{SKU: "bad sku!", Name: " ", Category: "", PriceCents: -5, Currency: "usd", Stock: -1,
		Attributes: []byte(`{"k":"\u0000"}`)}
	err := in.Validate()
	var v *problem.ValidationError
	if !errors.As(err, &v) || !errors.Is(err, problem.ErrInvalid) {
		t.Fatalf("err = %v, want a validation error", err)
	}
	got := map[string]bool{}
	for _, f := range v.Fields {
		got[f.Field] = true
	}
	for _, f := range []string{"sku", "name", "category", "price_cents", "currency", "stock", "attributes"} {
		if !got[f] {
			t.Errorf("%q not reported; got %v", f, v.Fields)
		}
	}
	ok := catalog.Input{SKU: "A-1", Name: "n", Category: "c", Currency: "EUR"}
	if err := ok.Validate(); err != nil || string(ok.Attributes) != "{}" {
		t.Errorf("valid input: %v, attributes %s", err, ok.Attributes)
	}
}
