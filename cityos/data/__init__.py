"""DM  data management: the NGSI-LD broker today; NGSI v2, catalog and consent come next."""
