%% emqx-double (a test double of EMQX 4.4.4, not EMQX): the node side of
%% `emqx_ctl`. run/1 returns {Output, ExitCode}; the texts follow
%% emqx_mgmt_cli 4.4.4 for status, broker, cluster, plugins, vm, listeners,
%% mgmt and data.
-module(emqx_double_ctl).

-export([run/1, usage/1]).

-define(MGMT_CMDS, ["status", "broker", "cluster", "clients", "routes", "subscriptions",
                    "plugins", "vm", "mnesia", "listeners", "log", "trace", "traces", "mgmt",
                    "data", "acl"]).

run(Args) ->
    Out = case emqx_double:is_running() of
              false ->
                  {f("emqx-double: node ~p is still starting (it waits for its mnesia "
                     "tables, as ekka does)~n", [node()]), 1};
              true ->
                  try cmd(Args)
                  catch C:E -> {f("Error: ~p:~p~n", [C, E]), 1}
                  end
          end,
    case Out of
        %% The command crashed in 4.4.4: emqx_ctl logs it, prints nothing,
        %% and nodetool exits 1.
        {crash, Reason} ->
            emqx_double:say("[error] CMD Error:~0p", [Reason]),
            {"", 1};
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
cmd2(["status" | _]) ->
    usage([{"status", "Show broker status"}]);

cmd2(["broker"]) ->
    [f("~-10s: ~s~n", [K, V])
     || {K, V} <- [{sysdescr, "EMQ X Broker"}, {version, emqx_double:version()},
                   {uptime, emqx_double:uptime_string()}, {datetime, datetime()}]];
cmd2(["broker", "stats"]) ->
    [f("~-30s: ~w~n", [K, V]) || {K, V} <- emqx_double_mqtt:stats()];
cmd2(["broker", "metrics"]) ->
    not_emulated("broker metrics");
cmd2(["broker" | _]) ->
    usage([{"broker", "Show broker version, uptime and description"},
           {"broker stats", "Show broker statistics of clients, topics, subscribers"},
           {"broker metrics", "Show broker metrics"}]);

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
cmd2(["plugins", "reload", _]) ->
    not_emulated("plugins reload");
cmd2(["plugins" | _]) ->
    usage([{"plugins list", "Show loaded plugins"},
           {"plugins load <Plugin>", "Load plugin"},
           {"plugins unload <Plugin>", "Unload plugin"},
           {"plugins reload <Plugin>", "Reload plugin"}]);

cmd2(["vm"]) -> cmd2(["vm", "all"]);
cmd2(["vm", "all"]) -> [cmd2(["vm", N]) || N <- ["load", "memory", "process", "io", "ports"]];
cmd2(["vm", "load"]) ->
    [f("cpu/~-20s: ~s~n", [K, V])
     || {K, V} <- lists:zip([load1, load5, load15], emqx_double_http:loads())];
cmd2(["vm", "memory"]) ->
    [f("memory/~-17s: ~w~n", [K, V]) || {K, V} <- erlang:memory()];
cmd2(["vm", "process"]) ->
    [f("process/~-16s: ~w~n", [K, erlang:system_info(I)])
     || {K, I} <- [{limit, process_limit}, {count, process_count}]];
cmd2(["vm", "io"]) ->
    Io = lists:usort(lists:flatten(erlang:system_info(check_io))),
    [f("io/~-21s: ~w~n", [K, proplists:get_value(K, Io)]) || K <- [max_fds, active_fds]];
cmd2(["vm", "ports"]) ->
    [f("ports/~-16s: ~w~n", [K, erlang:system_info(I)])
     || {K, I} <- [{count, port_count}, {limit, port_limit}]];
cmd2(["vm" | _]) ->
    usage([{"vm all", "Show info of Erlang VM"},
           {"vm load", "Show load of Erlang VM"},
           {"vm memory", "Show memory of Erlang VM"},
           {"vm process", "Show process of Erlang VM"},
           {"vm io", "Show IO of Erlang VM"},
           {"vm ports", "Show Ports of Erlang VM"}]);

cmd2(["listeners"]) -> listeners();
cmd2(["listeners", "stop" | _]) -> not_emulated("listeners stop");
cmd2(["listeners", "restart" | _]) -> not_emulated("listeners restart");
cmd2(["listeners" | _]) ->
    usage([{"listeners", "List listeners"},
           {"listeners stop    <Identifier>", "Stop a listener"},
           {"listeners stop    <Proto> <Port>", "Stop a listener"},
           {"listeners restart <Identifier>", "Restart a listener"}]);

cmd2(["mgmt" | Args]) -> emqx_double_mgmt:mgmt(Args);
cmd2(["data" | Args]) -> emqx_double_mgmt:data(Args);

cmd2([Cmd | _]) ->
    case lists:member(Cmd, ?MGMT_CMDS) of
        true -> not_emulated(Cmd);
        false -> {f("Command ~s not found~n", [Cmd]), 1}
    end.

not_emulated(What) ->
    {f("emqx-double: `~s` is not emulated by this test double~n", [What]), 1}.

%% emqx_ctl:usage/1: "~-70s# ~s~n" per line.
usage(Lines) ->
    [f("~-70s# ~s~n", [U, D]) || {U, D} <- Lines].

usage_all() ->
    usage([{"status", "Show broker status"},
           {"broker", "Show broker version, uptime and description"},
           {"cluster status|join|leave|force-leave", "Cluster"},
           {"plugins list|load|unload", "Plugins"},
           {"vm all|load|memory|process|io|ports", "Erlang VM"},
           {"listeners", "List listeners"},
           {"mgmt list|insert|update|lookup|delete", "Applications of the REST API"},
           {"data export|import <File>", "Export / import data"}]).

datetime() ->
    {{Y, M, D}, {H, Mi, S}} = calendar:local_time(),
    f("~4..0w-~2..0w-~2..0w ~2..0w:~2..0w:~2..0w", [Y, M, D, H, Mi, S]).

%% emqx_mgmt_cli:listeners/1: the esockd listeners (tcp, ssl), then the
%% ranch ones (the API's http:management / https:management, then ws, wss)
%% in the order of their ranch refs. The double serves no dashboard, so
%% there is no http:dashboard.
listeners() ->
    Mqtt = emqx_double_mqtt:listeners(),
    Esockd = lists:sort([{id(I), Info} || Info = #{proto := P} = I <- Mqtt,
                                           P =:= tcp orelse P =:= ssl]),
    Ranch = lists:sort([{ranch_ref(I), Info} || Info = #{proto := P} = I <- Mqtt,
                                                 P =:= ws orelse P =:= wss]
                       ++ [{Ref, {http, Ref, Port, A, M, C}}
                           || {Ref, Port, A, M, C} <- emqx_double_http:listeners()]),
    [[listener(Esockd_Id, I) || {Esockd_Id, I} <- Esockd],
     [listener(ranch_id(Ref, I), I) || {Ref, I} <- Ranch]].

id(#{proto := P, name := N}) -> "mqtt:" ++ atom_to_list(P) ++ ":" ++ N.

ranch_ref(#{proto := P, value := V}) ->
    {_, Port} = emqx_double_mqtt:parse_bind(V),
    "mqtt:" ++ atom_to_list(P) ++ ":" ++ integer_to_list(Port).

%% A ranch listener is named by its configured id only when the configured
%% listen_on is the bare port (emqx_listeners:find_id_by_listen_on/1 gets
%% the port alone from ranch).
ranch_id(_Ref, I = #{value := V}) ->
    case string:find(V, ":") of
        nomatch -> id(I);
        _ -> ranch_ref(I)
    end;
ranch_id(Ref, {http, _, _, _, _, _}) -> Ref.

listener(Id, {http, _, Port, Acceptors, Max, Current}) ->
    lines(Id, "0.0.0.0:" ++ integer_to_list(Port), Acceptors, Max, Current);
listener(Id, #{proto := P, value := V, acceptors := A, max := M, conns := C}) ->
    ListenOn = case P of
                   _ when P =:= ws; P =:= wss ->
                       {_, Port} = emqx_double_mqtt:parse_bind(V),
                       "0.0.0.0:" ++ integer_to_list(Port);
                   _ -> emqx_double_mqtt:listen_on(V)
               end,
    lines(Id, ListenOn, A, M, atomics:get(C, 1)).

lines(Id, ListenOn, Acceptors, Max, Current) ->
    [f("~s~n", [Id]),
     f("  ~-16s: ~s~n", [listen_on, ListenOn]),
     [f("  ~-16s: ~w~n", [K, V])
      || {K, V} <- [{acceptors, Acceptors}, {max_conns, Max}, {current_conn, Current},
                    {shutdown_count, []}]]].
