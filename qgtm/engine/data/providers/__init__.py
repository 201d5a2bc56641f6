"""Market and macro data providers behind one interface (see base.Provider)."""
