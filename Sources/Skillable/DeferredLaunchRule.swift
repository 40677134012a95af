import Foundation

/// How a deferred-launch answer to `Launch` is recognised — the one place that knows its shape.
///
/// An API consumer can be set by Skillable staff to answer "user has too many active labs" and
/// "multi-instance launch" with a deferred launch token and a URL where the learner manages their labs.
/// The JSON of that answer is **unconfirmed** (vendor-apis.md), so the rule is a setting
/// (`SKILLABLE_DEFERRED_LAUNCH_RULE`):
/// - `url-with-non-success` (default): a non-success `Result` that still carries a `Url`;
/// - `field:NAME`: a top-level string field `NAME` holding the URL (e.g. `field:DeferredLaunchUrl`);
/// - `off`: never (the gateway's own too-many-labs page handles Result 2).
public enum DeferredLaunchRule: Sendable, Equatable, CustomStringConvertible {
    case urlWithNonSuccess
    case field(String)
    case off

    /// Parses the setting; nil when it is none of the documented forms.
    public init?(setting: String) {
        let trimmed = setting.trimmingCharacters(in: .whitespaces)
        switch trimmed.lowercased() {
        case "url-with-non-success", "": self = .urlWithNonSuccess
        case "off", "none": self = .off
        default:
            guard trimmed.lowercased().hasPrefix("field:"), trimmed.count > 6 else { return nil }
            self = .field(String(trimmed.dropFirst(6)))
        }
    }

    public var description: String {
        switch self {
        case .urlWithNonSuccess: "url-with-non-success"
        case .field(let name): "field:\(name)"
        case .off: "off"
        }
    }

    /// The URL to send the learner to when `response` is a deferred launch, else nil.
    public func deferredURL(in response: SkillableLaunchResponse) -> String? {
        switch self {
        case .off:
            return nil
        case .urlWithNonSuccess:
            guard response.result != .success, let url = response.url, !url.isEmpty else { return nil }
            return url
        case .field(let name):
            guard let url = response.stringFields.first(where: { $0.key.caseInsensitiveCompare(name) == .orderedSame })?.value,
                !url.isEmpty
            else { return nil }
            return url
        }
    }
}
