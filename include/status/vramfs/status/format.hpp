// The forms of `vramfs status`: a table for people, JSON for scripts, and the Prometheus text
// format for node_exporter's textfile collector. All are made from one StatusSnapshot.
#pragma once

#include "vramfs/fs/status.hpp"

#include <string>

namespace vramfs {

std::string status_text(const StatusSnapshot& s);
std::string status_json(const StatusSnapshot& s);
// Device totals, counters and request timing (no per-file series), each labelled with the
// mount point.
std::string status_prometheus(const StatusSnapshot& s, const std::string& mountpoint);

// Reads status_json's output back; false, with `error` set, if the text is not that.
bool parse_status_json(const std::string& text, StatusSnapshot& out, std::string& error);

} // namespace vramfs
