"""SQLite storage: a connection factory, migrations, and one repository module per table family."""
