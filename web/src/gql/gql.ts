/* eslint-disable */
import * as types from './graphql';
import type { TypedDocumentNode as DocumentNode } from '@graphql-typed-document-node/core';

/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "\n  subscription LiveEvents {\n    events {\n      id\n      type\n      time\n      subject\n      data\n    }\n  }\n": typeof types.LiveEventsDocument,
    "\n  query Analytics($teamId: ID, $from: DateTime!, $to: DateTime!) {\n    eventCounts(teamId: $teamId) {\n      name\n      count\n    }\n    activeUsers(period: DAY, from: $from, to: $to, teamId: $teamId) {\n      start\n      users\n    }\n    usage(period: DAY, from: $from, to: $to, teamId: $teamId) {\n      start\n      prompts\n      promptTokens\n      completionTokens\n      costUsd\n    }\n  }\n": typeof types.AnalyticsDocument,
    "\n  query Funnel($steps: [String!]!, $teamId: ID) {\n    funnel(steps: $steps, teamId: $teamId) {\n      name\n      users\n      conversion\n    }\n  }\n": typeof types.FunnelDocument,
    "\n  query AuditLog($teamId: ID!, $after: String) {\n    auditLog(teamId: $teamId, first: 50, after: $after) {\n      entries {\n        id\n        action\n        actorId\n        target\n        time\n      }\n      nextCursor\n    }\n    team(id: $teamId) {\n      id\n      members {\n        userId\n        email\n      }\n    }\n  }\n": typeof types.AuditLogDocument,
    "\n  mutation Checkout($planId: ID!, $teamId: ID) {\n    createCheckoutSession(planId: $planId, teamId: $teamId) {\n      id\n      url\n    }\n  }\n": typeof types.CheckoutDocument,
    "\n  mutation Portal($teamId: ID) {\n    createBillingPortalSession(teamId: $teamId) {\n      url\n    }\n  }\n": typeof types.PortalDocument,
    "\n  query FlagsPage($teamId: ID) {\n    flags(teamId: $teamId) {\n      name\n      description\n      enabled\n    }\n  }\n": typeof types.FlagsPageDocument,
    "\n  query Prompts($teamId: ID) {\n    prompts {\n      path\n      version\n      model\n      description\n      variableSpecs {\n        name\n        type\n        required\n        description\n        maxLength\n        default\n      }\n    }\n    llmUsage(teamId: $teamId) {\n      tokensUsed\n      tokensPerPeriod\n      periodEnd\n    }\n  }\n": typeof types.PromptsDocument,
    "\n  subscription PromptStream($path: String!, $variables: JSON, $teamId: ID) {\n    promptStream(path: $path, variables: $variables, teamId: $teamId) {\n      requestId\n      delta\n      done\n      model\n      promptTokens\n      completionTokens\n      costUsd\n      cached\n    }\n  }\n": typeof types.PromptStreamDocument,
    "\n  query NotificationsPage {\n    notifications(first: 50) {\n      id\n      type\n      title\n      body\n      createdAt\n      readAt\n    }\n  }\n": typeof types.NotificationsPageDocument,
    "\n  mutation MarkRead($id: ID!) {\n    markNotificationRead(id: $id)\n  }\n": typeof types.MarkReadDocument,
    "\n  mutation MarkAllRead {\n    markAllNotificationsRead\n  }\n": typeof types.MarkAllReadDocument,
    "\n  query Overview($teamId: ID!) {\n    team(id: $teamId) {\n      id\n      name\n      members {\n        userId\n        email\n        role\n      }\n    }\n    notifications(first: 5) {\n      id\n      title\n      createdAt\n      readAt\n    }\n  }\n": typeof types.OverviewDocument,
    "\n  query OverviewUsage($teamId: ID) {\n    llmUsage(teamId: $teamId) {\n      tokensUsed\n      tokensPerPeriod\n      periodEnd\n    }\n    usage(period: MONTH, teamId: $teamId) {\n      start\n      costUsd\n      promptTokens\n      completionTokens\n    }\n  }\n": typeof types.OverviewUsageDocument,
    "\n  mutation DeleteAccount($password: String!) {\n    deleteAccount(password: $password)\n  }\n": typeof types.DeleteAccountDocument,
    "\n  mutation ExportMyData {\n    exportMyData {\n      url\n      expiresAt\n    }\n  }\n": typeof types.ExportMyDataDocument,
    "\n  query WebhookEndpoints($teamId: ID) {\n    webhookEndpoints(teamId: $teamId) {\n      id\n      url\n      eventTypes\n      enabled\n      disabledReason\n      createdAt\n    }\n  }\n": typeof types.WebhookEndpointsDocument,
    "\n  mutation CreateWebhookEndpoint($teamId: ID!, $url: String!, $eventTypes: [String!]!) {\n    createWebhookEndpoint(teamId: $teamId, url: $url, eventTypes: $eventTypes) {\n      id\n      secret\n    }\n  }\n": typeof types.CreateWebhookEndpointDocument,
    "\n  mutation DeleteWebhookEndpoint($id: ID!) {\n    deleteWebhookEndpoint(id: $id)\n  }\n": typeof types.DeleteWebhookEndpointDocument,
    "\n  mutation RotateWebhookSecret($id: ID!) {\n    rotateWebhookSecret(id: $id) {\n      id\n      secret\n    }\n  }\n": typeof types.RotateWebhookSecretDocument,
    "\n  query Settings($teamId: ID) {\n    sessions {\n      id\n      createdAt\n      expiresAt\n      current\n      ip\n      userAgent\n    }\n    apiKeys(teamId: $teamId) {\n      id\n      name\n      permissions\n      createdAt\n      lastUsedAt\n      revokedAt\n    }\n    me {\n      id\n      permissions\n    }\n  }\n": typeof types.SettingsDocument,
    "\n  mutation RevokeSession($id: ID!) {\n    revokeSession(id: $id)\n  }\n": typeof types.RevokeSessionDocument,
    "\n  mutation CreateApiKey($name: String!, $permissions: [String!]!, $teamId: ID) {\n    createApiKey(name: $name, permissions: $permissions, teamId: $teamId) {\n      key\n      apiKey {\n        id\n        name\n      }\n    }\n  }\n": typeof types.CreateApiKeyDocument,
    "\n  mutation ChangePassword($current: String!, $new: String!) {\n    changePassword(current: $current, new: $new)\n  }\n": typeof types.ChangePasswordDocument,
    "\n  mutation RevokeApiKey($id: ID!) {\n    revokeApiKey(id: $id)\n  }\n": typeof types.RevokeApiKeyDocument,
    "\n  query TeamPage($teamId: ID!) {\n    team(id: $teamId) {\n      id\n      name\n      members {\n        userId\n        email\n        role\n      }\n    }\n  }\n": typeof types.TeamPageDocument,
    "\n  query PendingInvites($teamId: ID!) {\n    invites(teamId: $teamId) {\n      id\n      email\n      role\n      expiresAt\n    }\n  }\n": typeof types.PendingInvitesDocument,
    "\n  mutation RevokeInvite($id: ID!) {\n    revokeInvite(id: $id)\n  }\n": typeof types.RevokeInviteDocument,
    "\n  mutation InviteMember($teamId: ID!, $email: String!, $role: String!) {\n    inviteMember(teamId: $teamId, email: $email, role: $role) {\n      id\n      role\n      expiresAt\n      token\n    }\n  }\n": typeof types.InviteMemberDocument,
    "\n  mutation ChangeRole($teamId: ID!, $userId: ID!, $role: String!) {\n    changeRole(teamId: $teamId, userId: $userId, role: $role) {\n      role\n    }\n  }\n": typeof types.ChangeRoleDocument,
    "\n  mutation RemoveMember($teamId: ID!, $userId: ID!) {\n    removeMember(teamId: $teamId, userId: $userId)\n  }\n": typeof types.RemoveMemberDocument,
    "\n  query InvitePreview($token: String!) {\n    invite(token: $token) {\n      teamName\n      role\n      expiresAt\n    }\n  }\n": typeof types.InvitePreviewDocument,
    "\n  mutation AcceptInvite($token: String!) {\n    acceptInvite(token: $token) {\n      role\n      team {\n        id\n        name\n      }\n    }\n  }\n": typeof types.AcceptInviteDocument,
    "\n  mutation RequestPasswordReset($email: String!) {\n    requestPasswordReset(email: $email)\n  }\n": typeof types.RequestPasswordResetDocument,
    "\n  mutation ResetPassword($token: String!, $newPassword: String!) {\n    resetPassword(token: $token, newPassword: $newPassword)\n  }\n": typeof types.ResetPasswordDocument,
    "\n  mutation VerifyEmail($token: String!) {\n    verifyEmail(token: $token)\n  }\n": typeof types.VerifyEmailDocument,
    "\n  mutation CreateTeam($name: String!) {\n    createTeam(name: $name) {\n      id\n      name\n    }\n  }\n": typeof types.CreateTeamDocument,
    "\n  query Unread {\n    unreadCount\n    notifications(first: 1) {\n      id\n    }\n  }\n": typeof types.UnreadDocument,
    "\n  query CurrentPlan($teamId: ID) {\n    plans {\n      id\n      name\n      priceCents\n      currency\n      interval\n      isDefault\n      entitlements {\n        llmTokensPerMonth\n        seats\n        features\n      }\n    }\n    mySubscription(teamId: $teamId) {\n      id\n      status\n      currentPeriodEnd\n      cancelAtPeriodEnd\n      plan {\n        id\n        name\n      }\n      entitlements {\n        llmTokensPerMonth\n        seats\n        features\n      }\n    }\n  }\n": typeof types.CurrentPlanDocument,
    "\n  query Me {\n    me {\n      id\n      email\n      permissions\n      memberships {\n        role\n        team {\n          id\n          name\n        }\n      }\n    }\n  }\n": typeof types.MeDocument,
};
const documents: Documents = {
    "\n  subscription LiveEvents {\n    events {\n      id\n      type\n      time\n      subject\n      data\n    }\n  }\n": types.LiveEventsDocument,
    "\n  query Analytics($teamId: ID, $from: DateTime!, $to: DateTime!) {\n    eventCounts(teamId: $teamId) {\n      name\n      count\n    }\n    activeUsers(period: DAY, from: $from, to: $to, teamId: $teamId) {\n      start\n      users\n    }\n    usage(period: DAY, from: $from, to: $to, teamId: $teamId) {\n      start\n      prompts\n      promptTokens\n      completionTokens\n      costUsd\n    }\n  }\n": types.AnalyticsDocument,
    "\n  query Funnel($steps: [String!]!, $teamId: ID) {\n    funnel(steps: $steps, teamId: $teamId) {\n      name\n      users\n      conversion\n    }\n  }\n": types.FunnelDocument,
    "\n  query AuditLog($teamId: ID!, $after: String) {\n    auditLog(teamId: $teamId, first: 50, after: $after) {\n      entries {\n        id\n        action\n        actorId\n        target\n        time\n      }\n      nextCursor\n    }\n    team(id: $teamId) {\n      id\n      members {\n        userId\n        email\n      }\n    }\n  }\n": types.AuditLogDocument,
    "\n  mutation Checkout($planId: ID!, $teamId: ID) {\n    createCheckoutSession(planId: $planId, teamId: $teamId) {\n      id\n      url\n    }\n  }\n": types.CheckoutDocument,
    "\n  mutation Portal($teamId: ID) {\n    createBillingPortalSession(teamId: $teamId) {\n      url\n    }\n  }\n": types.PortalDocument,
    "\n  query FlagsPage($teamId: ID) {\n    flags(teamId: $teamId) {\n      name\n      description\n      enabled\n    }\n  }\n": types.FlagsPageDocument,
    "\n  query Prompts($teamId: ID) {\n    prompts {\n      path\n      version\n      model\n      description\n      variableSpecs {\n        name\n        type\n        required\n        description\n        maxLength\n        default\n      }\n    }\n    llmUsage(teamId: $teamId) {\n      tokensUsed\n      tokensPerPeriod\n      periodEnd\n    }\n  }\n": types.PromptsDocument,
    "\n  subscription PromptStream($path: String!, $variables: JSON, $teamId: ID) {\n    promptStream(path: $path, variables: $variables, teamId: $teamId) {\n      requestId\n      delta\n      done\n      model\n      promptTokens\n      completionTokens\n      costUsd\n      cached\n    }\n  }\n": types.PromptStreamDocument,
    "\n  query NotificationsPage {\n    notifications(first: 50) {\n      id\n      type\n      title\n      body\n      createdAt\n      readAt\n    }\n  }\n": types.NotificationsPageDocument,
    "\n  mutation MarkRead($id: ID!) {\n    markNotificationRead(id: $id)\n  }\n": types.MarkReadDocument,
    "\n  mutation MarkAllRead {\n    markAllNotificationsRead\n  }\n": types.MarkAllReadDocument,
    "\n  query Overview($teamId: ID!) {\n    team(id: $teamId) {\n      id\n      name\n      members {\n        userId\n        email\n        role\n      }\n    }\n    notifications(first: 5) {\n      id\n      title\n      createdAt\n      readAt\n    }\n  }\n": types.OverviewDocument,
    "\n  query OverviewUsage($teamId: ID) {\n    llmUsage(teamId: $teamId) {\n      tokensUsed\n      tokensPerPeriod\n      periodEnd\n    }\n    usage(period: MONTH, teamId: $teamId) {\n      start\n      costUsd\n      promptTokens\n      completionTokens\n    }\n  }\n": types.OverviewUsageDocument,
    "\n  mutation DeleteAccount($password: String!) {\n    deleteAccount(password: $password)\n  }\n": types.DeleteAccountDocument,
    "\n  mutation ExportMyData {\n    exportMyData {\n      url\n      expiresAt\n    }\n  }\n": types.ExportMyDataDocument,
    "\n  query WebhookEndpoints($teamId: ID) {\n    webhookEndpoints(teamId: $teamId) {\n      id\n      url\n      eventTypes\n      enabled\n      disabledReason\n      createdAt\n    }\n  }\n": types.WebhookEndpointsDocument,
    "\n  mutation CreateWebhookEndpoint($teamId: ID!, $url: String!, $eventTypes: [String!]!) {\n    createWebhookEndpoint(teamId: $teamId, url: $url, eventTypes: $eventTypes) {\n      id\n      secret\n    }\n  }\n": types.CreateWebhookEndpointDocument,
    "\n  mutation DeleteWebhookEndpoint($id: ID!) {\n    deleteWebhookEndpoint(id: $id)\n  }\n": types.DeleteWebhookEndpointDocument,
    "\n  mutation RotateWebhookSecret($id: ID!) {\n    rotateWebhookSecret(id: $id) {\n      id\n      secret\n    }\n  }\n": types.RotateWebhookSecretDocument,
    "\n  query Settings($teamId: ID) {\n    sessions {\n      id\n      createdAt\n      expiresAt\n      current\n      ip\n      userAgent\n    }\n    apiKeys(teamId: $teamId) {\n      id\n      name\n      permissions\n      createdAt\n      lastUsedAt\n      revokedAt\n    }\n    me {\n      id\n      permissions\n    }\n  }\n": types.SettingsDocument,
    "\n  mutation RevokeSession($id: ID!) {\n    revokeSession(id: $id)\n  }\n": types.RevokeSessionDocument,
    "\n  mutation CreateApiKey($name: String!, $permissions: [String!]!, $teamId: ID) {\n    createApiKey(name: $name, permissions: $permissions, teamId: $teamId) {\n      key\n      apiKey {\n        id\n        name\n      }\n    }\n  }\n": types.CreateApiKeyDocument,
    "\n  mutation ChangePassword($current: String!, $new: String!) {\n    changePassword(current: $current, new: $new)\n  }\n": types.ChangePasswordDocument,
    "\n  mutation RevokeApiKey($id: ID!) {\n    revokeApiKey(id: $id)\n  }\n": types.RevokeApiKeyDocument,
    "\n  query TeamPage($teamId: ID!) {\n    team(id: $teamId) {\n      id\n      name\n      members {\n        userId\n        email\n        role\n      }\n    }\n  }\n": types.TeamPageDocument,
    "\n  query PendingInvites($teamId: ID!) {\n    invites(teamId: $teamId) {\n      id\n      email\n      role\n      expiresAt\n    }\n  }\n": types.PendingInvitesDocument,
    "\n  mutation RevokeInvite($id: ID!) {\n    revokeInvite(id: $id)\n  }\n": types.RevokeInviteDocument,
    "\n  mutation InviteMember($teamId: ID!, $email: String!, $role: String!) {\n    inviteMember(teamId: $teamId, email: $email, role: $role) {\n      id\n      role\n      expiresAt\n      token\n    }\n  }\n": types.InviteMemberDocument,
    "\n  mutation ChangeRole($teamId: ID!, $userId: ID!, $role: String!) {\n    changeRole(teamId: $teamId, userId: $userId, role: $role) {\n      role\n    }\n  }\n": types.ChangeRoleDocument,
    "\n  mutation RemoveMember($teamId: ID!, $userId: ID!) {\n    removeMember(teamId: $teamId, userId: $userId)\n  }\n": types.RemoveMemberDocument,
    "\n  query InvitePreview($token: String!) {\n    invite(token: $token) {\n      teamName\n      role\n      expiresAt\n    }\n  }\n": types.InvitePreviewDocument,
    "\n  mutation AcceptInvite($token: String!) {\n    acceptInvite(token: $token) {\n      role\n      team {\n        id\n        name\n      }\n    }\n  }\n": types.AcceptInviteDocument,
    "\n  mutation RequestPasswordReset($email: String!) {\n    requestPasswordReset(email: $email)\n  }\n": types.RequestPasswordResetDocument,
    "\n  mutation ResetPassword($token: String!, $newPassword: String!) {\n    resetPassword(token: $token, newPassword: $newPassword)\n  }\n": types.ResetPasswordDocument,
    "\n  mutation VerifyEmail($token: String!) {\n    verifyEmail(token: $token)\n  }\n": types.VerifyEmailDocument,
    "\n  mutation CreateTeam($name: String!) {\n    createTeam(name: $name) {\n      id\n      name\n    }\n  }\n": types.CreateTeamDocument,
    "\n  query Unread {\n    unreadCount\n    notifications(first: 1) {\n      id\n    }\n  }\n": types.UnreadDocument,
    "\n  query CurrentPlan($teamId: ID) {\n    plans {\n      id\n      name\n      priceCents\n      currency\n      interval\n      isDefault\n      entitlements {\n        llmTokensPerMonth\n        seats\n        features\n      }\n    }\n    mySubscription(teamId: $teamId) {\n      id\n      status\n      currentPeriodEnd\n      cancelAtPeriodEnd\n      plan {\n        id\n        name\n      }\n      entitlements {\n        llmTokensPerMonth\n        seats\n        features\n      }\n    }\n  }\n": types.CurrentPlanDocument,
    "\n  query Me {\n    me {\n      id\n      email\n      permissions\n      memberships {\n        role\n        team {\n          id\n          name\n        }\n      }\n    }\n  }\n": types.MeDocument,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 *
 *
 * @example
 * ```ts
 * const query = graphql(`query GetUser($id: ID!) { user(id: $id) { name } }`);
 * ```
 *
 * The query argument is unknown!
 * Please regenerate the types.
 */
export function graphql(source: string): unknown;

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription LiveEvents {\n    events {\n      id\n      type\n      time\n      subject\n      data\n    }\n  }\n"): (typeof documents)["\n  subscription LiveEvents {\n    events {\n      id\n      type\n      time\n      subject\n      data\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Analytics($teamId: ID, $from: DateTime!, $to: DateTime!) {\n    eventCounts(teamId: $teamId) {\n      name\n      count\n    }\n    activeUsers(period: DAY, from: $from, to: $to, teamId: $teamId) {\n      start\n      users\n    }\n    usage(period: DAY, from: $from, to: $to, teamId: $teamId) {\n      start\n      prompts\n      promptTokens\n      completionTokens\n      costUsd\n    }\n  }\n"): (typeof documents)["\n  query Analytics($teamId: ID, $from: DateTime!, $to: DateTime!) {\n    eventCounts(teamId: $teamId) {\n      name\n      count\n    }\n    activeUsers(period: DAY, from: $from, to: $to, teamId: $teamId) {\n      start\n      users\n    }\n    usage(period: DAY, from: $from, to: $to, teamId: $teamId) {\n      start\n      prompts\n      promptTokens\n      completionTokens\n      costUsd\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Funnel($steps: [String!]!, $teamId: ID) {\n    funnel(steps: $steps, teamId: $teamId) {\n      name\n      users\n      conversion\n    }\n  }\n"): (typeof documents)["\n  query Funnel($steps: [String!]!, $teamId: ID) {\n    funnel(steps: $steps, teamId: $teamId) {\n      name\n      users\n      conversion\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query AuditLog($teamId: ID!, $after: String) {\n    auditLog(teamId: $teamId, first: 50, after: $after) {\n      entries {\n        id\n        action\n        actorId\n        target\n        time\n      }\n      nextCursor\n    }\n    team(id: $teamId) {\n      id\n      members {\n        userId\n        email\n      }\n    }\n  }\n"): (typeof documents)["\n  query AuditLog($teamId: ID!, $after: String) {\n    auditLog(teamId: $teamId, first: 50, after: $after) {\n      entries {\n        id\n        action\n        actorId\n        target\n        time\n      }\n      nextCursor\n    }\n    team(id: $teamId) {\n      id\n      members {\n        userId\n        email\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation Checkout($planId: ID!, $teamId: ID) {\n    createCheckoutSession(planId: $planId, teamId: $teamId) {\n      id\n      url\n    }\n  }\n"): (typeof documents)["\n  mutation Checkout($planId: ID!, $teamId: ID) {\n    createCheckoutSession(planId: $planId, teamId: $teamId) {\n      id\n      url\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation Portal($teamId: ID) {\n    createBillingPortalSession(teamId: $teamId) {\n      url\n    }\n  }\n"): (typeof documents)["\n  mutation Portal($teamId: ID) {\n    createBillingPortalSession(teamId: $teamId) {\n      url\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query FlagsPage($teamId: ID) {\n    flags(teamId: $teamId) {\n      name\n      description\n      enabled\n    }\n  }\n"): (typeof documents)["\n  query FlagsPage($teamId: ID) {\n    flags(teamId: $teamId) {\n      name\n      description\n      enabled\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Prompts($teamId: ID) {\n    prompts {\n      path\n      version\n      model\n      description\n      variableSpecs {\n        name\n        type\n        required\n        description\n        maxLength\n        default\n      }\n    }\n    llmUsage(teamId: $teamId) {\n      tokensUsed\n      tokensPerPeriod\n      periodEnd\n    }\n  }\n"): (typeof documents)["\n  query Prompts($teamId: ID) {\n    prompts {\n      path\n      version\n      model\n      description\n      variableSpecs {\n        name\n        type\n        required\n        description\n        maxLength\n        default\n      }\n    }\n    llmUsage(teamId: $teamId) {\n      tokensUsed\n      tokensPerPeriod\n      periodEnd\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription PromptStream($path: String!, $variables: JSON, $teamId: ID) {\n    promptStream(path: $path, variables: $variables, teamId: $teamId) {\n      requestId\n      delta\n      done\n      model\n      promptTokens\n      completionTokens\n      costUsd\n      cached\n    }\n  }\n"): (typeof documents)["\n  subscription PromptStream($path: String!, $variables: JSON, $teamId: ID) {\n    promptStream(path: $path, variables: $variables, teamId: $teamId) {\n      requestId\n      delta\n      done\n      model\n      promptTokens\n      completionTokens\n      costUsd\n      cached\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query NotificationsPage {\n    notifications(first: 50) {\n      id\n      type\n      title\n      body\n      createdAt\n      readAt\n    }\n  }\n"): (typeof documents)["\n  query NotificationsPage {\n    notifications(first: 50) {\n      id\n      type\n      title\n      body\n      createdAt\n      readAt\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation MarkRead($id: ID!) {\n    markNotificationRead(id: $id)\n  }\n"): (typeof documents)["\n  mutation MarkRead($id: ID!) {\n    markNotificationRead(id: $id)\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation MarkAllRead {\n    markAllNotificationsRead\n  }\n"): (typeof documents)["\n  mutation MarkAllRead {\n    markAllNotificationsRead\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Overview($teamId: ID!) {\n    team(id: $teamId) {\n      id\n      name\n      members {\n        userId\n        email\n        role\n      }\n    }\n    notifications(first: 5) {\n      id\n      title\n      createdAt\n      readAt\n    }\n  }\n"): (typeof documents)["\n  query Overview($teamId: ID!) {\n    team(id: $teamId) {\n      id\n      name\n      members {\n        userId\n        email\n        role\n      }\n    }\n    notifications(first: 5) {\n      id\n      title\n      createdAt\n      readAt\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query OverviewUsage($teamId: ID) {\n    llmUsage(teamId: $teamId) {\n      tokensUsed\n      tokensPerPeriod\n      periodEnd\n    }\n    usage(period: MONTH, teamId: $teamId) {\n      start\n      costUsd\n      promptTokens\n      completionTokens\n    }\n  }\n"): (typeof documents)["\n  query OverviewUsage($teamId: ID) {\n    llmUsage(teamId: $teamId) {\n      tokensUsed\n      tokensPerPeriod\n      periodEnd\n    }\n    usage(period: MONTH, teamId: $teamId) {\n      start\n      costUsd\n      promptTokens\n      completionTokens\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation DeleteAccount($password: String!) {\n    deleteAccount(password: $password)\n  }\n"): (typeof documents)["\n  mutation DeleteAccount($password: String!) {\n    deleteAccount(password: $password)\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation ExportMyData {\n    exportMyData {\n      url\n      expiresAt\n    }\n  }\n"): (typeof documents)["\n  mutation ExportMyData {\n    exportMyData {\n      url\n      expiresAt\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query WebhookEndpoints($teamId: ID) {\n    webhookEndpoints(teamId: $teamId) {\n      id\n      url\n      eventTypes\n      enabled\n      disabledReason\n      createdAt\n    }\n  }\n"): (typeof documents)["\n  query WebhookEndpoints($teamId: ID) {\n    webhookEndpoints(teamId: $teamId) {\n      id\n      url\n      eventTypes\n      enabled\n      disabledReason\n      createdAt\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation CreateWebhookEndpoint($teamId: ID!, $url: String!, $eventTypes: [String!]!) {\n    createWebhookEndpoint(teamId: $teamId, url: $url, eventTypes: $eventTypes) {\n      id\n      secret\n    }\n  }\n"): (typeof documents)["\n  mutation CreateWebhookEndpoint($teamId: ID!, $url: String!, $eventTypes: [String!]!) {\n    createWebhookEndpoint(teamId: $teamId, url: $url, eventTypes: $eventTypes) {\n      id\n      secret\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation DeleteWebhookEndpoint($id: ID!) {\n    deleteWebhookEndpoint(id: $id)\n  }\n"): (typeof documents)["\n  mutation DeleteWebhookEndpoint($id: ID!) {\n    deleteWebhookEndpoint(id: $id)\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation RotateWebhookSecret($id: ID!) {\n    rotateWebhookSecret(id: $id) {\n      id\n      secret\n    }\n  }\n"): (typeof documents)["\n  mutation RotateWebhookSecret($id: ID!) {\n    rotateWebhookSecret(id: $id) {\n      id\n      secret\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Settings($teamId: ID) {\n    sessions {\n      id\n      createdAt\n      expiresAt\n      current\n      ip\n      userAgent\n    }\n    apiKeys(teamId: $teamId) {\n      id\n      name\n      permissions\n      createdAt\n      lastUsedAt\n      revokedAt\n    }\n    me {\n      id\n      permissions\n    }\n  }\n"): (typeof documents)["\n  query Settings($teamId: ID) {\n    sessions {\n      id\n      createdAt\n      expiresAt\n      current\n      ip\n      userAgent\n    }\n    apiKeys(teamId: $teamId) {\n      id\n      name\n      permissions\n      createdAt\n      lastUsedAt\n      revokedAt\n    }\n    me {\n      id\n      permissions\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation RevokeSession($id: ID!) {\n    revokeSession(id: $id)\n  }\n"): (typeof documents)["\n  mutation RevokeSession($id: ID!) {\n    revokeSession(id: $id)\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation CreateApiKey($name: String!, $permissions: [String!]!, $teamId: ID) {\n    createApiKey(name: $name, permissions: $permissions, teamId: $teamId) {\n      key\n      apiKey {\n        id\n        name\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation CreateApiKey($name: String!, $permissions: [String!]!, $teamId: ID) {\n    createApiKey(name: $name, permissions: $permissions, teamId: $teamId) {\n      key\n      apiKey {\n        id\n        name\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation ChangePassword($current: String!, $new: String!) {\n    changePassword(current: $current, new: $new)\n  }\n"): (typeof documents)["\n  mutation ChangePassword($current: String!, $new: String!) {\n    changePassword(current: $current, new: $new)\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation RevokeApiKey($id: ID!) {\n    revokeApiKey(id: $id)\n  }\n"): (typeof documents)["\n  mutation RevokeApiKey($id: ID!) {\n    revokeApiKey(id: $id)\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query TeamPage($teamId: ID!) {\n    team(id: $teamId) {\n      id\n      name\n      members {\n        userId\n        email\n        role\n      }\n    }\n  }\n"): (typeof documents)["\n  query TeamPage($teamId: ID!) {\n    team(id: $teamId) {\n      id\n      name\n      members {\n        userId\n        email\n        role\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query PendingInvites($teamId: ID!) {\n    invites(teamId: $teamId) {\n      id\n      email\n      role\n      expiresAt\n    }\n  }\n"): (typeof documents)["\n  query PendingInvites($teamId: ID!) {\n    invites(teamId: $teamId) {\n      id\n      email\n      role\n      expiresAt\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation RevokeInvite($id: ID!) {\n    revokeInvite(id: $id)\n  }\n"): (typeof documents)["\n  mutation RevokeInvite($id: ID!) {\n    revokeInvite(id: $id)\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation InviteMember($teamId: ID!, $email: String!, $role: String!) {\n    inviteMember(teamId: $teamId, email: $email, role: $role) {\n      id\n      role\n      expiresAt\n      token\n    }\n  }\n"): (typeof documents)["\n  mutation InviteMember($teamId: ID!, $email: String!, $role: String!) {\n    inviteMember(teamId: $teamId, email: $email, role: $role) {\n      id\n      role\n      expiresAt\n      token\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation ChangeRole($teamId: ID!, $userId: ID!, $role: String!) {\n    changeRole(teamId: $teamId, userId: $userId, role: $role) {\n      role\n    }\n  }\n"): (typeof documents)["\n  mutation ChangeRole($teamId: ID!, $userId: ID!, $role: String!) {\n    changeRole(teamId: $teamId, userId: $userId, role: $role) {\n      role\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation RemoveMember($teamId: ID!, $userId: ID!) {\n    removeMember(teamId: $teamId, userId: $userId)\n  }\n"): (typeof documents)["\n  mutation RemoveMember($teamId: ID!, $userId: ID!) {\n    removeMember(teamId: $teamId, userId: $userId)\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query InvitePreview($token: String!) {\n    invite(token: $token) {\n      teamName\n      role\n      expiresAt\n    }\n  }\n"): (typeof documents)["\n  query InvitePreview($token: String!) {\n    invite(token: $token) {\n      teamName\n      role\n      expiresAt\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation AcceptInvite($token: String!) {\n    acceptInvite(token: $token) {\n      role\n      team {\n        id\n        name\n      }\n    }\n  }\n"): (typeof documents)["\n  mutation AcceptInvite($token: String!) {\n    acceptInvite(token: $token) {\n      role\n      team {\n        id\n        name\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation RequestPasswordReset($email: String!) {\n    requestPasswordReset(email: $email)\n  }\n"): (typeof documents)["\n  mutation RequestPasswordReset($email: String!) {\n    requestPasswordReset(email: $email)\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation ResetPassword($token: String!, $newPassword: String!) {\n    resetPassword(token: $token, newPassword: $newPassword)\n  }\n"): (typeof documents)["\n  mutation ResetPassword($token: String!, $newPassword: String!) {\n    resetPassword(token: $token, newPassword: $newPassword)\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation VerifyEmail($token: String!) {\n    verifyEmail(token: $token)\n  }\n"): (typeof documents)["\n  mutation VerifyEmail($token: String!) {\n    verifyEmail(token: $token)\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation CreateTeam($name: String!) {\n    createTeam(name: $name) {\n      id\n      name\n    }\n  }\n"): (typeof documents)["\n  mutation CreateTeam($name: String!) {\n    createTeam(name: $name) {\n      id\n      name\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Unread {\n    unreadCount\n    notifications(first: 1) {\n      id\n    }\n  }\n"): (typeof documents)["\n  query Unread {\n    unreadCount\n    notifications(first: 1) {\n      id\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query CurrentPlan($teamId: ID) {\n    plans {\n      id\n      name\n      priceCents\n      currency\n      interval\n      isDefault\n      entitlements {\n        llmTokensPerMonth\n        seats\n        features\n      }\n    }\n    mySubscription(teamId: $teamId) {\n      id\n      status\n      currentPeriodEnd\n      cancelAtPeriodEnd\n      plan {\n        id\n        name\n      }\n      entitlements {\n        llmTokensPerMonth\n        seats\n        features\n      }\n    }\n  }\n"): (typeof documents)["\n  query CurrentPlan($teamId: ID) {\n    plans {\n      id\n      name\n      priceCents\n      currency\n      interval\n      isDefault\n      entitlements {\n        llmTokensPerMonth\n        seats\n        features\n      }\n    }\n    mySubscription(teamId: $teamId) {\n      id\n      status\n      currentPeriodEnd\n      cancelAtPeriodEnd\n      plan {\n        id\n        name\n      }\n      entitlements {\n        llmTokensPerMonth\n        seats\n        features\n      }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Me {\n    me {\n      id\n      email\n      permissions\n      memberships {\n        role\n        team {\n          id\n          name\n        }\n      }\n    }\n  }\n"): (typeof documents)["\n  query Me {\n    me {\n      id\n      email\n      permissions\n      memberships {\n        role\n        team {\n          id\n          name\n        }\n      }\n    }\n  }\n"];

export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}

export type DocumentType<TDocumentNode extends DocumentNode<any, any>> = TDocumentNode extends DocumentNode<  infer TType,  any>  ? TType  : never;