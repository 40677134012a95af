import AsyncHTTPClient
import Foundation
import GatewaySupport
import NIOCore
import NIOHTTP1

/// A platform's OpenID configuration as LTI Dynamic Registration reads it (lti-advantage.md §2), validated.
public struct PlatformConfiguration: Sendable, Equatable {
    public var issuer: String
    public var authorizationEndpoint: String
    public var tokenEndpoint: String
    public var jwksURI: String
    public var registrationEndpoint: String
    /// The platform's product (`canvas`, `moodle`, …), from its LTI platform configuration.
    public var productFamily: String?
    /// Message types it supports (objects `{type, placements}` or plain strings, as Moodle sends them).
    public var messagesSupported: [String]
}

/// What the platform answered to the tool's registration.
public struct RegisteredClient: Sendable, Equatable {
    public var clientID: String
    public var deploymentID: String?
    /// The scopes the platform granted (it may grant fewer than asked).
    public var scopes: [String]
}

/// Why a dynamic registration stopped; `message` is safe to show to the LMS administrator.
public struct RegistrationError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
    public init(_ message: String) { self.message = message }
}

/// Fetches a platform's OpenID configuration and posts the tool's registration to it (LTI Dynamic Registration).
///
/// - Important: The configuration URL comes from whoever opens the registration link, so every URL is checked
///   (https; http only on loopback), each exchange has one deadline and a size cap, and redirects are not followed.
public struct RegistrationClient: Sendable {
    /// Must not follow redirects (the gateway's client follows none): a redirect would leave the checked URL.
    let http: HTTPClient
    var timeout: Duration = .seconds(10)
    var maxBytes = 64 * 1024
    var userAgent = "lti-gateway"
    /// Whether platforms on this machine or a private network may be called: only for a gateway that itself runs on
    /// loopback (development, tests), since the configuration URL comes from whoever opens a link.
    let allowLocal: Bool

    public init(http: HTTPClient, allowLocal: Bool, timeout: Duration = .seconds(10), maxBytes: Int = 64 * 1024) {
        self.http = http
        self.allowLocal = allowLocal
        self.timeout = timeout
        self.maxBytes = maxBytes
    }

    /// `host:port` of a URL the gateway may call: https (http only to loopback, when local hosts are allowed), and no
    /// loopback, private or link-local address unless local hosts are allowed; nil otherwise.
    public func origin(_ url: String) -> String? {
        guard let (_, host, port) = SecureURL.parse(url), allowLocal || !(Loopback.isLoopback(host) || Self.isPrivateAddress(host)) else {
            return nil
        }
        return "\(host):\(port)"
    }

    /// An IP literal of a private, link-local or unspecified range (10/8, 172.16/12, 192.168/16, 169.254/16, 0/8, fc00::/7,
    /// fe80::/10). Names are not resolved: a name that resolves to such an address is the platform's operator's doing.
    static func isPrivateAddress(_ host: String) -> Bool {
        let trimmed = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        let parts = trimmed.split(separator: ".").compactMap { UInt8($0) }
        if parts.count == 4 {
            return parts[0] == 10 || parts[0] == 0 || (parts[0] == 172 && (16...31).contains(parts[1])) || (parts[0] == 192 && parts[1] == 168)
                || (parts[0] == 169 && parts[1] == 254)
        }
        let lowered = trimmed.lowercased()
        return lowered.contains(":") && (lowered.hasPrefix("fc") || lowered.hasPrefix("fd") || lowered.hasPrefix("fe8") || lowered == "::")
    }

    /// Reads and validates the configuration at `url` (with the registration token as bearer, as Canvas requires).
    public func configuration(at url: String, token: String?) async throws -> PlatformConfiguration {
        guard let configurationOrigin = origin(url) else {
            throw RegistrationError("The platform's configuration URL must use https, on a public address.")
        }
        let (status, body) = try await exchange(.GET, url, token: token, body: nil)
        guard status == 200 else { throw RegistrationError("The platform's configuration could not be read (HTTP \(status)).") }
        guard let document = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else {
            throw RegistrationError("The platform's configuration is not a JSON object.")
        }
        func endpoint(_ name: String) throws -> String {
            guard let value = document[name] as? String, origin(value) != nil else {
                throw RegistrationError("The platform's configuration lacks an https \(name).")
            }
            return value
        }
        let issuer = try endpoint("issuer")
        // The issuer must be on the host that served the configuration (not the path: Moodle serves it at
        // /mod/lti/openid-configuration.php).
        guard let issuerHost = URLComponents(string: issuer)?.host?.lowercased(), configurationOrigin.hasPrefix(issuerHost + ":") else {
            throw RegistrationError("The platform's issuer is not on the host that served its configuration.")
        }
        // The registration is posted (with the bearer token) only to the origin that served the configuration.
        let registrationEndpoint = try endpoint("registration_endpoint")
        guard origin(registrationEndpoint) == configurationOrigin else {
            throw RegistrationError("The platform's registration endpoint is not on the origin that served its configuration.")
        }
        guard let platform = document["https://purl.imsglobal.org/spec/lti-platform-configuration"] as? [String: Any] else {
            throw RegistrationError("The platform's configuration has no LTI platform configuration.")
        }
        let messages = (platform["messages_supported"] as? [Any] ?? []).compactMap { item -> String? in
            (item as? String) ?? ((item as? [String: Any])?["type"] as? String)
        }
        return PlatformConfiguration(
            issuer: issuer, authorizationEndpoint: try endpoint("authorization_endpoint"), tokenEndpoint: try endpoint("token_endpoint"),
            jwksURI: try endpoint("jwks_uri"), registrationEndpoint: registrationEndpoint,
            productFamily: platform["product_family_code"] as? String, messagesSupported: messages)
    }

    /// Posts the tool's client registration (`registration`, JSON) to the platform's registration endpoint.
    public func register(
        _ registration: [String: any Sendable], at configuration: PlatformConfiguration, token: String?
    ) async throws
        -> RegisteredClient
    {
        let json = String(decoding: try JSONSerialization.data(withJSONObject: registration, options: [.sortedKeys]), as: UTF8.self)
        let (status, body) = try await exchange(.POST, configuration.registrationEndpoint, token: token, body: json)
        let answer = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any]
        guard (200..<300).contains(status) else {
            let said = (answer?["error_description"] as? String) ?? (answer?["error"] as? String) ?? (answer?["message"] as? String)
            throw RegistrationError(
                "The platform refused the registration (HTTP \(status))" + (said.map { ": \(String($0.prefix(300)))" } ?? "."))
        }
        guard let answer, let clientID = answer["client_id"] as? String, !clientID.isEmpty, clientID.count <= 255 else {
            throw RegistrationError("The platform's answer to the registration has no client_id.")
        }
        let tool = answer["https://purl.imsglobal.org/spec/lti-tool-configuration"] as? [String: Any]
        let deployment = (tool?["deployment_id"] as? String) ?? (tool?["deployment_id"] as? NSNumber)?.stringValue
        return RegisteredClient(
            clientID: clientID, deploymentID: deployment.flatMap { (1...255).contains($0.count) ? $0 : nil },
            scopes: ((answer["scope"] as? String) ?? "").split(separator: " ").map(String.init))
    }

    private func exchange(_ method: HTTPMethod, _ url: String, token: String?, body: String?) async throws -> (Int, Data) {
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "User-Agent", value: userAgent)
        request.headers.add(name: "Accept", value: "application/json")
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let (http, timeout, maxBytes, prepared) = (http, timeout, maxBytes, request)
        do {
            return try await withDeadline(timeout) {
                let nanoseconds = timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000
                let response = try await http.execute(prepared, timeout: .nanoseconds(nanoseconds))
                let data = try await response.body.collect(upTo: maxBytes)
                return (Int(response.status.code), Data(data.readableBytesView))
            }
        } catch is DeadlineExceeded {
            throw RegistrationError("The platform did not answer in time.")
        } catch is NIOTooManyBytesError {
            throw RegistrationError("The platform's answer is larger than a registration needs.")
        } catch {
            throw RegistrationError("The platform could not be reached.")
        }
    }
}
