"""SI  common services — resident portal, dashboards (SI-CS-*). Not built yet."""
