package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// SetConsent records that targetID allows impersonation until the given
// time, replacing an earlier grant; the zero time withdraws the grant.
func (s *Store) SetConsent(ctx context.Context, targetID string, until time.Time) error {
	var err error
	if until.IsZero() {
		_, err = s.exec(ctx, qDeleteConsent, targetID)
	} else {
		_, err = s.exec(ctx, qSetConsent, targetID, micros(until))
	}
	if err != nil {
		return fmt.Errorf("sqlstore: set consent: %w", err)
	}
	return nil
}

// Consent returns until when targetID allows impersonation, or the zero time
// when there is no grant.
func (s *Store) Consent(ctx context.Context, targetID string) (time.Time, error) {
	var until int64
	err := s.queryRow(ctx, qConsent, []any{targetID}, &until)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return time.Time{}, nil
	case err != nil:
		return time.Time{}, fmt.Errorf("sqlstore: consent: %w", err)
	}
	return fromMicros(until), nil
}
