import Crypto
import Foundation
import Hummingbird
import LTICore
import Logging

/// `POST /webhooks/skillable/{event}`: Skillable's lab events, one URL per event (its body names none).
///
/// - Important: Authenticated by `GATEWAY_WEBHOOK_SECRET` in `Authorization` (`Bearer SECRET`, or `Basic` with the
///   secret as password), compared by digest in constant time; without a configured secret every webhook is refused.
///   Answered 200 only once what the event requires (the lab's state, a queued score) is stored.
struct WebhookController: Sendable {
    let webhooks: SkillableWebhooks
    let secret: String?
    /// Largest body read (Skillable's lab details are about 1 KiB).
    static let bodyLimit = 64 * 1024

    func addRoutes(to router: Router<GatewayRequestContext>) {
        router.post("/webhooks/skillable/:event") { request, context in
            guard authorized(request) else {
                var refusal = GatewayError(
                    code: .unauthorized, status: .unauthorized, title: "Not allowed",
                    message: secret == nil ? "Webhooks are not enabled on this gateway." : "The webhook's credentials are missing or wrong.")
                refusal.challenge = "Bearer"
                throw refusal
            }
            let event = context.parameters.get("event") ?? ""
            guard SkillableWebhooks.isEventName(event) else {
                throw GatewayError.invalidRequest("the event name must be lower-case words joined by -", param: "event")
            }
            let body = try await FormParameters.body(of: request, limit: Self.bodyLimit)
            let details: SkillableLabDetails
            do {
                details = try JSONDecoder().decode(SkillableLabDetails.self, from: Data(body.utf8))
            } catch {
                throw GatewayError.invalidRequest("the body must be Skillable's lab details (JSON with the lab instance's Id)", param: "body")
            }
            let outcome = try await webhooks.handle(event: event, details: details, logger: context.logger)
            context.logger.info(
                "Skillable webhook",
                metadata: ["skillable.event": "\(event)", "lab.instance": "\(details.instanceID)", "gw.webhook": "\(outcome.rawValue)"])
            return JSONValue.object([("status", .string(outcome.rawValue))]).response()
        }
    }

    /// Whether the request carries the secret.
    func authorized(_ request: Request) -> Bool {
        guard let secret, let header = request.headers[.authorization] else { return false }
        let presented: String
        let lowered = header.lowercased()
        if lowered.hasPrefix("bearer ") {
            presented = String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces)
        } else if lowered.hasPrefix("basic "),
            let decoded = Base64URL.decodeStandard(String(header.dropFirst(6)).trimmingCharacters(in: .whitespaces)),
            let colon = decoded.firstIndex(of: ":")
        {
            presented = String(decoded[decoded.index(after: colon)...])
        } else {
            return false
        }
        return constantTimeEquals(OperationsController.digest(presented), OperationsController.digest(secret))
    }
}

extension Base64URL {
    /// Standard base64 (with padding, as HTTP Basic credentials carry it) as UTF-8 text; nil when it is not.
    static func decodeStandard(_ text: String) -> String? {
        guard text.count <= 1024, let data = Data(base64Encoded: text) else { return nil }
        return String(data: data, encoding: .utf8)
    }
}
