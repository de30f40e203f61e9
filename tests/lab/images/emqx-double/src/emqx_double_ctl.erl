%% emqx-double (a test double of EMQX 4.4.4, not EMQX): the node side of
%% `emqx_ctl`. run/1 returns {Output, ExitCode}; the texts follow
%% emqx_mgmt_cli 4.4.4 for status, cluster and plugins.
-module(emqx_double_ctl).

-export([run/1]).

-define(MGMT_CMDS, ["status", "broker", "cluster", "clients", "routes", "subscriptions",
                    "plugins", "vm", "mnesia", "listeners", "log", "trace", "mgmt"]).

run(Args) ->
    Out = try cmd(Args)
          catch C:E -> {io_lib:format("Error: ~p:~p~n", [C, E]), 1}
          end,
    case Out of
        {Text, Code} -> {lists:flatten(Text), Code};
        Text -> {lists:flatten(Text), 0}
    end.

f(Fmt, Args) -> io_lib:format(Fmt, Args).

cmd([Cmd | _] = Args) ->
    case lists:member(Cmd, ?MGMT_CMDS) andalso not emqx_double:plugin_active(emqx_management) of
        true -> {f("Command ~s not found~n", [Cmd]), 1};
        false -> cmd2(Args)
    end;
cmd([]) -> usage_all().

cmd2(["status"]) ->
    {Status, _} = init:get_status(),
    f("Node ~p ~s is ~p~n", [node(), emqx_double:version(), Status]);
cmd2(["cluster", "status"]) ->
    f("Cluster status: ~p~n", [emqx_double_cluster:info()]);
cmd2(["cluster", "join", Node]) ->
    case emqx_double_cluster:join(list_to_atom(Node)) of
        ok -> [f("Join the cluster successfully.~n", []), cmd2(["cluster", "status"])];
        ignore -> f("Ignore.~n", []);
        {error, Reason} -> f("Failed to join the cluster: ~0p~n", [Reason])
    end;
cmd2(["cluster", "leave"]) ->
    case emqx_double_cluster:leave() of
        ok -> [f("Leave the cluster successfully.~n", []), cmd2(["cluster", "status"])];
        {error, Reason} -> f("Failed to leave the cluster: ~0p~n", [Reason])
    end;
cmd2(["cluster", "force-leave", Node]) ->
    case emqx_double_cluster:force_leave(list_to_atom(Node)) of
        ok -> [f("Remove the node from cluster successfully.~n", []), cmd2(["cluster", "status"])];
        ignore -> f("Ignore.~n", []);
        {error, Reason} -> f("Failed to remove the node from cluster: ~0p~n", [Reason])
    end;
cmd2(["cluster" | _]) ->
    usage([{"cluster join <Node>", "Join the cluster"},
           {"cluster leave", "Leave the cluster"},
           {"cluster force-leave <Node>", "Force the node leave from cluster"},
           {"cluster status", "Cluster status"}]);
cmd2(["plugins", "list"]) ->
    [f("Plugin(~s, description=~s, active=~s)~n", [N, D, A])
     || {N, D, A} <- emqx_double:plugins()];
cmd2(["plugins", "load", Name]) ->
    case emqx_double:load_plugin(list_to_atom(Name)) of
        ok -> f("Plugin ~s loaded successfully.~n", [Name]);
        {error, R} -> f("Load plugin ~s error: ~p.~n", [Name, R])
    end;
cmd2(["plugins", "unload", Name]) ->
    case emqx_double:unload_plugin(list_to_atom(Name)) of
        ok -> f("Plugin ~s unloaded successfully.~n", [Name]);
        {error, R} -> f("Unload plugin ~s error: ~p.~n", [Name, R])
    end;
cmd2(["plugins" | _]) ->
    usage([{"plugins list", "Show loaded plugins"},
           {"plugins load <Plugin>", "Load plugin"},
           {"plugins unload <Plugin>", "Unload plugin"}]);
cmd2([Cmd | _]) ->
    case lists:member(Cmd, ?MGMT_CMDS) of
        true -> {f("emqx-double: `~s` is not emulated by this test double~n", [Cmd]), 1};
        false -> {f("Command ~s not found~n", [Cmd]), 1}
    end.

usage(Lines) ->
    [f("~-48s# ~s~n", [U, D]) || {U, D} <- Lines].

usage_all() ->
    usage([{"status", "Show broker status"},
           {"cluster status|join|leave|force-leave", "Cluster"},
           {"plugins list|load|unload", "Plugins"}]).
