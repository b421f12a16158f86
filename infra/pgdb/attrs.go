package pgdb

import "go.opentelemetry.io/otel/attribute"

// dbRole tells which server a query went to: primary, replica or a shard.
const dbRole = attribute.Key("db.scaleshop.role")
