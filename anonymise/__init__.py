"""The privacy engine: pseudonyms, hierarchies, risk measures, anonymisation, disclosure control."""
