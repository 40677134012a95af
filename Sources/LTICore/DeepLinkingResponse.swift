import Foundation

/// One `ltiResourceLink` content item (Deep Linking 2.0 §3.1).
public struct DeepLinkResourceLink: Sendable, Equatable {
    public var title: String
    public var text: String?
    /// The launch URL of the link (the tool's launch endpoint).
    public var url: String
    /// Custom parameters the platform sends back on each launch of the link (string values).
    public var custom: [String: String]
    public var lineItem: LineItem?

    /// A gradebook column the platform creates with the link.
    public struct LineItem: Sendable, Equatable {
        public var label: String
        public var scoreMaximum: Double
        public var resourceID: String?
        public var tag: String?
        public init(label: String, scoreMaximum: Double, resourceID: String? = nil, tag: String? = nil) {
            self.label = label
            self.scoreMaximum = scoreMaximum
            self.resourceID = resourceID
            self.tag = tag
        }
    }

    public init(title: String, text: String?, url: String, custom: [String: String], lineItem: LineItem? = nil) {
        self.title = title
        self.text = text
        self.url = url
        self.custom = custom
        self.lineItem = lineItem
    }

    var claim: [String: any Sendable] {
        var item: [String: any Sendable] = ["type": "ltiResourceLink", "title": title, "url": url, "custom": custom]
        if let text { item["text"] = text }
        if let lineItem {
            var line: [String: any Sendable] = ["label": lineItem.label, "scoreMaximum": lineItem.scoreMaximum]
            if let resourceID = lineItem.resourceID { line["resourceId"] = resourceID }
            if let tag = lineItem.tag { line["tag"] = tag }
            item["lineItem"] = line
        }
        return item
    }
}

/// The claims of an `LtiDeepLinkingResponse` (checklist "Deep linking response"; Deep Linking 2.0 §4.5).
public enum DeepLinkingResponse {
    public static let dataClaim = LTIClaim.deepLinkingData
    public static let contentItemsClaim = LTIClaim.contentItems
    public static let messageClaim = LTIClaim.deepLinkingMessage

    /// - Parameters:
    ///   - clientID: our client id (`iss`); `platformIssuer` is the `aud`.
    ///   - data: the request's `data`, echoed exactly; omitted (never `null`) when the request had none.
    ///   - lifetime: seconds until `exp` (minutes, per the checklist).
    public static func claims(
        clientID: String, platformIssuer: String, deploymentID: String, data: String?,
        items: [DeepLinkResourceLink], message: String?, now: Date,
        lifetime: TimeInterval = 600
    ) -> [String: any Sendable] {
        var claims: [String: any Sendable] = [
            "iss": clientID,
            "aud": platformIssuer,
            "iat": Int(now.timeIntervalSince1970),
            "exp": Int(now.addingTimeInterval(lifetime).timeIntervalSince1970),
            "nonce": SecureRandom.token(),
            LTIClaim.deploymentID: deploymentID,
            LTIClaim.messageType: "LtiDeepLinkingResponse",
            LTIClaim.version: "1.3.0",
            contentItemsClaim: items.map(\.claim),
        ]
        if let data { claims[dataClaim] = data }
        if let message { claims[messageClaim] = message }
        return claims
    }
}
