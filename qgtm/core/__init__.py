"""Pure types and rules shared by engine, terminal and publisher; no I/O beyond reading
the project's own data files."""
