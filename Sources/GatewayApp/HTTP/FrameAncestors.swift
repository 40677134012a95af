import Foundation
import GatewayStorage
import Hummingbird
import LTICore
import Synchronization

/// Who may show the gateway's pages in a frame (hardening L3; CSP `frame-ancestors`).
///
/// Pages with actions — the lab picker, the learner's labs and the end confirmation, the storage and new-window
/// pages, the return to the LMS — may be framed only by the platform the request belongs to, so no other site can
/// overlay them and trick a click (clickjacking). The renderer marks such pages `frame-ancestors 'none'`; once a
/// route knows the request's platform it names it (``Slot``), and ``Middleware`` puts that platform's origins in.
/// A page with actions whose platform is unknown stays `'none'`. Pages without actions (a refusal with its
/// reference, a message) may be framed by any site: nothing on them can be clicked into doing something, and the
/// learner in whatever LMS frame reads why the launch was refused.
enum FrameAncestors {
    /// The placeholder the renderer puts on pages with actions.
    static let restricted = "frame-ancestors 'none'"

    /// Course pages of the cloud LMSs, on other hosts than their issuer: Canvas (`canvas.instructure.com` →
    /// `school.instructure.com`), Blackboard Learn SaaS (`blackboard.com`), Schoology.
    static let cloudCourseDomains: [(issuerHostSuffix: String, source: String)] = [
        ("instructure.com", "https://*.instructure.com"), ("blackboard.com", "https://*.blackboard.com"),
        ("schoology.com", "https://*.schoology.com"),
    ]

    /// The CSP source list of `registration`'s frame ancestors: its options', or derived from it.
    static func sources(_ registration: PlatformRegistration, options: PlatformLaunchOptions) -> String {
        if let configured = options.frameAncestors { return configured.joined(separator: " ") }
        var sources: [String] = []
        for url in [registration.issuer, registration.authURL] + (options.storageOrigin.map { [$0] } ?? []) {
            if let origin = PlatformStorageTarget.origin(of: url), !sources.contains(origin) { sources.append(origin) }
        }
        if let host = URLComponents(string: registration.issuer)?.host?.lowercased() {
            for (suffix, source) in cloudCourseDomains where host == suffix || host.hasSuffix("." + suffix) {
                sources.append(source)
            }
        }
        return sources.isEmpty ? "'none'" : sources.joined(separator: " ")
    }

    /// The request's platform, once a route knows it; its frame ancestors are worked out only for an answer that is a
    /// page with actions (most answers are redirects, which need none).
    final class Slot: Sendable {
        private let platform = Mutex<(registration: PlatformRegistration, options: PlatformLaunchOptions)?>(nil)
        var sources: String? { platform.withLock { $0 }.map { FrameAncestors.sources($0.registration, options: $0.options) } }
        func set(_ registration: PlatformRegistration, options: PlatformLaunchOptions) {
            platform.withLock { $0 = (registration, options) }
        }
    }

    /// Names the request's platform in the `frame-ancestors` of a page with actions.
    struct Middleware: RouterMiddleware {
        typealias Context = GatewayRequestContext

        func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
            var response = try await next(request, context)
            if let policy = response.headers[.contentSecurityPolicy], policy.hasSuffix(FrameAncestors.restricted),
                let sources = context.frameAncestors.sources
            {
                response.headers[.contentSecurityPolicy] = policy.dropLast(FrameAncestors.restricted.count) + "frame-ancestors " + sources
            }
            return response
        }
    }
}

extension GatewayRequestContext {
    /// Names `registration` as the request's platform for ``FrameAncestors``.
    func framedBy(_ registration: PlatformRegistration, options: PlatformLaunchOptions) {
        frameAncestors.set(registration, options: options)
    }
}
