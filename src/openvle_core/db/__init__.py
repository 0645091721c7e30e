"""The SQL database: models, engine/session factory, migrations, pagination helpers."""
