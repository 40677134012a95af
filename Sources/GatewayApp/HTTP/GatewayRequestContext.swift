import Hummingbird
import Logging
import NIOCore

/// The request context of every gateway route: Hummingbird's core storage plus the reference id
/// that ties an error page to its log line.
public struct GatewayRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Short random id shown on error pages and in every log line of the request (`gw.request.id`).
    public var referenceID: String
    /// The request's platform, once a route knows it: who may frame its pages with actions.
    let frameAncestors: FrameAncestors.Slot
    /// The connection the request came on (its peer's address slows down repeated admin API failures).
    let channel: any Channel

    public init(source: Source) {
        self.coreContext = .init(source: source)
        self.referenceID = ReferenceID.make()
        self.frameAncestors = FrameAncestors.Slot()
        self.channel = source.channel
        self.logger[metadataKey: "gw.request.id"] = .string(referenceID)
    }

    /// Form posts (login, launch) are small; anything bigger is refused before it is read.
    public var maxUploadSize: Int { 256 * 1024 }
}

/// Reference ids: 12 characters of an unambiguous alphabet, easy to read out on the phone.
enum ReferenceID {
    private static let alphabet = Array("ABCDEFGHJKLMNPQRSTUVWXYZ23456789")

    /// 12 characters of a 32-letter alphabet: 60 random bits from one draw.
    static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        var bits: UInt64 = generator.next()
        var id = ""
        for _ in 0..<12 {
            id.append(alphabet[Int(bits & 31)])
            bits >>= 5
        }
        return id
    }
}
