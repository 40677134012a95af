import Foundation
import GatewayStorage
import LTICore
import Logging
import Metrics

/// The request a launch runs for: its reference id (the launch record's id, shown on the learner's page)
/// and its logger.
struct LaunchTrace: Sendable {
    var referenceID: String
    var logger: Logger
}

/// A launch's gradebook endpoint (the AGS claim, checklist "Services"), recorded with the launch for grade passback.
struct LaunchGradebook: Sendable, Equatable {
    var lineItem: String?
    var lineItems: String?
    var scopes: [String]

    init(lineItem: String?, lineItems: String?, scopes: [String]) {
        self.lineItem = lineItem
        self.lineItems = lineItems
        self.scopes = scopes
    }

    init(_ endpoint: LTIIDToken.AGSEndpoint?) {
        self.init(lineItem: endpoint?.lineItem, lineItems: endpoint?.lineItems, scopes: endpoint?.scope ?? [])
    }
}

/// The one place a launch's outcome is recorded, counted and logged — for every launch, whatever its
/// destination (a lab, SkyPrep, a page).
struct LaunchRecorder: Sendable {
    let store: any LaunchStore

    /// A record of a resource-link launch, outcome `pending` until ``finish(_:outcome:trace:)``.
    func begin(
        _ trace: LaunchTrace, registrationID: String, deploymentID: String, learnerID: String, subject: String,
        resourceLinkID: String?, contextID: String?, labID: String?, gradebook: LaunchGradebook, now: Date
    ) -> LaunchRecord {
        LaunchRecord(
            id: trace.referenceID, registrationID: registrationID, deploymentID: deploymentID, learnerID: learnerID,
            subject: subject, messageType: LTIMessageType.resourceLinkRequest.rawValue, resourceLinkID: resourceLinkID,
            contextID: contextID, labID: labID, outcome: RecordedOutcome.pending.identifier, vendorResultCode: nil, labInstanceID: nil,
            agsLineItem: gradebook.lineItem, agsLineItems: gradebook.lineItems, agsScopes: gradebook.scopes, createdAt: now)
    }

    /// Stores `record` as pending before the lab is asked for — with `job`, when given, in one write: a launch cut short
    /// by a crash while Skillable starts its lab still shows in the records (`pending`, with learner and lab), for an
    /// operator to reconcile. A failure is logged (the lab still starts). Whether the write was stored.
    @discardableResult
    func markPending(_ record: LaunchRecord, job: JobToQueue? = nil, trace: LaunchTrace) async -> Bool {
        do {
            try await store.recordLaunch(record, learner: nil, job: job)
            return true
        } catch {
            let what = job == nil ? "pending launch record not stored" : "pending launch record and SkyPrep provisioning not stored"
            trace.logger.error("\(what)", metadata: ["gw.learner": "\(record.learnerID)", "error": "\(error)"])
            return false
        }
    }

    /// Stores `record` as pending together with its learner and, when given, a job, in one write: when that fails,
    /// none is stored and the error is the caller's (the launch stops, as it does when its learner cannot be stored).
    func markPending(_ record: LaunchRecord, learner: LearnerIdentity, job: JobToQueue?) async throws {
        try await store.recordLaunch(record, learner: learner, job: job)
    }

    /// Sets the launch's outcome, counts it (`lti_launches_total`), stores the record (completing a pending one) and
    /// logs it.
    func finish(_ record: inout LaunchRecord, outcome: RecordedOutcome, trace: LaunchTrace) async {
        record.outcome = outcome.identifier
        Counter(label: "lti_launches_total", dimensions: [("outcome", outcome.metricLabel)]).increment()
        do {
            try await store.completeLaunch(record)
        } catch {
            // The lab may already run; the learner still goes in, and the operator sees why the record is missing.
            trace.logger.error("launch record not stored", metadata: ["gw.launch.outcome": "\(outcome.identifier)", "error": "\(error)"])
        }
        trace.logger.info(
            "launch",
            metadata: [
                "gw.launch.outcome": "\(outcome.identifier)", "lti.registration": "\(record.registrationID)",
                "lti.deployment": "\(record.deploymentID)",
                "lab.id": "\(record.labID ?? "-")", "lab.instance": "\(record.labInstanceID ?? "-")",
                "skillable.result": "\(record.vendorResultCode.map(String.init) ?? "-")",
            ])
    }

    /// Records `failure` as the launch's outcome and hands it back as the outcome to show.
    func refuse(_ record: inout LaunchRecord, _ failure: LaunchFailure, trace: LaunchTrace) async -> LaunchOutcome {
        await finish(&record, outcome: .refused(failure.code), trace: trace)
        return .refused(failure)
    }
}
