package catalogdb

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"gorm.io/gorm"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrationLockID names the Postgres advisory lock that makes one clone
// migrate while the others wait (any fixed number unique to this database).
const migrationLockID = 0x5ca1e_ca7a1

// Migrate applies the embedded migrations on the primary, holding a
// session-level advisory lock so two clones starting together never run
// them at once; the second finds nothing pending. Migration 2 is the
// deterministic seed, so a fresh stack is seeded exactly once.
func Migrate(ctx context.Context, primary *gorm.DB, log *slog.Logger) error {
	sqlDB, err := primary.DB()
	if err != nil {
		return err
	}
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	locker, err := lock.NewPostgresSessionLocker(
		lock.WithLockID(migrationLockID),
		lock.WithLockTimeout(1, 120), // retry every second for two minutes
	)
	if err != nil {
		return err
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, sqlDB, fsys,
		goose.WithSessionLocker(locker), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	results, err := provider.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, r := range results {
		log.InfoContext(ctx, "migration applied", "version", r.Source.Version, "file", r.Source.Path, "took", r.Duration)
	}
	return nil
}
