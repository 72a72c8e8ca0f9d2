//! Host-port allocation for `-P` and empty host ports (being written; see issue 3).
