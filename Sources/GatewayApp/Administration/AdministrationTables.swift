import Foundation
import GatewayStorage

/// What the command line prints for API keys and the audit trail: aligned columns, times in ISO 8601 UTC.
public enum AdministrationTables {
    static func time(_ date: Date?) -> String {
        date.map { Date.ISO8601FormatStyle(includingFractionalSeconds: false).format($0) } ?? "-"
    }

    /// How long ago `date` was, in its largest whole unit: `42s`, `5m`, `3h`, `2d` (`0s` for a time not yet come).
    static func age(since date: Date, now: Date) -> String {
        let seconds = max(0, Int(now.timeIntervalSince(date)))
        for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60)] where seconds >= size { return "\(seconds / size)\(unit)" }
        return "\(seconds)s"
    }

    /// Rows under a header, each column as wide as its widest cell.
    static func columns(_ header: [String], _ rows: [[String]]) -> String {
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        return ([header] + rows).map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }

    /// `api-keys list`: never a secret (only its displayed prefix).
    public static func apiKeys(_ keys: [StoredAPIKey]) -> String {
        guard !keys.isEmpty else { return "No API keys. Create one with: lti-gateway api-keys create --help\n" }
        return columns(
            ["ID", "NAME", "PREFIX", "CREATED", "EXPIRES", "LAST USED", "SCOPES"],
            keys.map {
                [$0.id, $0.name, $0.prefix + "…", time($0.createdAt), time($0.expiresAt), time($0.lastUsedAt), $0.scopes.joined(separator: " ")]
            })
    }

    /// `audit list`.
    public static func auditEvents(_ events: [AuditEvent]) -> String {
        guard !events.isEmpty else { return "No changes recorded yet.\n" }
        return columns(["AT", "ACTOR", "ACTION", "TARGET"], events.map { [time($0.at), $0.actor, $0.action, $0.target] })
    }

    /// `outbox list`.
    public static func outbox(_ deliveries: [Administration.OutboxDelivery]) -> String {
        guard !deliveries.isEmpty else { return "No scores waiting or failed.\n" }
        return columns(
            ["ID", "LAUNCH", "STATE", "ATTEMPTS", "NEXT ATTEMPT", "LAST ERROR"],
            deliveries.map { [$0.id, $0.launchID ?? "-", $0.state, String($0.attempts), time($0.nextAttemptAt), $0.lastError ?? "-"] })
    }
}
