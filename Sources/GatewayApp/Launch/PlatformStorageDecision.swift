import GatewayStorage
import LTICore

/// Whether a login offers LTI Platform Storage, and to which frame its page sends the storage messages
/// (`reference/lti-advantage.md` §1; SPEC "Launch" step 1).
enum PlatformStorageDecision {
    /// The frame for the login's storage messages, or nil when the login is a plain redirect (state cookies only).
    ///
    /// - Parameters:
    ///   - storageTarget: the login's `lti_storage_target`, if any.
    ///   - options: the platform's options (storage mode, frame to assume).
    ///   - fetchDestination: the browser's `Sec-Fetch-Dest`; `document` means a top-level window, where
    ///     first-party cookies work and storage is skipped without a page, a wait or a message.
    static func frame(storageTarget: String?, options: PlatformLaunchOptions, fetchDestination: String?) -> String? {
        guard fetchDestination != "document" else { return nil }
        // A target that is not a plain frame name (or `_parent`) is ignored: it is looked up among the LMS
        // window's frames, where names such as `top` or `opener` would pick a window that is not a frame.
        let target = storageTarget.flatMap { PlatformStorageFrame.isValid($0) ? $0 : nil }
        switch options.platformStorage ?? .auto {
        case .off: return nil
        case .auto: return target ?? options.storageFrame
        case .on: return target ?? options.storageFrame ?? "_parent"
        }
    }
}
